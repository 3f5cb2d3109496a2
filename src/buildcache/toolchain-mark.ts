// One go command's view of its toolchain's mark (layout and why:
// store/toolchain-marks.ts).
//
//   unread --read()--> reading --> absent | fresh | stale | unknown
//
// read() sends the one GET, at the command's first get that the packs
// could not answer (a command served from packs never asks) or at its
// first upload. lacks() is true only when the bucket answered that there
// is no mark: "unknown" (a timeout, an error, the breaker) keeps the
// per-action GETs going out as before. uploading() writes the mark, once,
// unless a fresh one is there: the bucket is about to hold outputs of this
// toolchain, so writing it is never wrong, only sometimes unneeded.

import type { S3Client } from "../s3/client.ts";
import { encodeMark, markObject, markTime, MARK_REFRESH_MS } from "../store/toolchain-marks.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";

type Answer = "absent" | "fresh" | "stale" | "unknown";

type State = { kind: "unread" } | { kind: "reading"; answer: Promise<Answer> } | { kind: "read"; answer: Answer };

export interface ToolchainMarkDeps {
  client: S3Client;
  metrics: Metrics;
  logger: Logger;
  /** May write the mark (not --read-only). */
  writes: boolean;
  now?: () => number;
}

const MAX_MARK_BYTES = 4096;

export class ToolchainMark {
  private state: State = { kind: "unread" };
  private writing = false;

  constructor(
    private readonly d: ToolchainMarkDeps,
    /** toolchainOf(): "<GOOS>-<GOARCH>/<GOVERSION>". */
    readonly toolchain: string,
  ) {}

  /** The bucket said it has no mark: it holds no outputs of this toolchain. */
  lacks(): boolean | Promise<boolean> {
    const s = this.read();
    return s instanceof Promise ? s.then((a) => a === "absent") : s === "absent";
  }

  /** An output of this command is being uploaded. */
  uploading(): void {
    if (!this.d.writes || this.writing) return;
    this.writing = true;
    const s = this.read();
    if (s instanceof Promise) void s.then((a) => this.write(a));
    else this.write(s);
  }

  private read(): Answer | Promise<Answer> {
    if (this.state.kind === "read") return this.state.answer;
    if (this.state.kind === "reading") return this.state.answer;
    const answer = this.fetch().then((a) => {
      this.state = { kind: "read", answer: a };
      if (a === "absent") this.d.metrics.inc("toolchain_new");
      return a;
    });
    this.state = { kind: "reading", answer };
    return answer;
  }

  private async fetch(): Promise<Answer> {
    const { client, metrics, logger } = this.d;
    if (client.breaker.state === "open") return "unknown";
    try {
      const body = await client.getBytes(markObject(this.toolchain), MAX_MARK_BYTES);
      if (!body) return "absent";
      const at = markTime(body);
      return at !== null && this.now() - at < MARK_REFRESH_MS ? "fresh" : "stale";
    } catch (err) {
      metrics.inc("toolchain_mark_errors");
      logger.debug(`s3: toolchain mark ${this.toolchain}: ${(err as Error)?.message ?? err}`);
      return "unknown";
    }
  }

  private write(a: Answer): void {
    if (a === "fresh") return;
    const { client, metrics } = this.d;
    const body = encodeMark(this.now());
    client.uploads.enqueue({
      key: client.key(markObject(this.toolchain)),
      size: body.length,
      run: async () => {
        try {
          await client.put(markObject(this.toolchain), body, { contentType: "text/plain" });
          metrics.inc("toolchain_marks_up");
        } catch (err) {
          metrics.inc("toolchain_mark_errors");
          throw err;
        }
      },
    });
  }

  private now(): number {
    return (this.d.now ?? Date.now)();
  }
}
