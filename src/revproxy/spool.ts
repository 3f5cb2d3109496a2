// One origin download feeding its entry file and every client that asked
// for it, at once (the same design as the module proxy's zip flights):
// the body is written to the entry's temp file as it arrives, and each
// client reads that file from the start through its own position, waiting
// for more when it has caught up. A client that has caught up is handed
// each new chunk straight from memory. So a slow client never slows the
// download (the disk absorbs the difference), a late client still gets the
// whole body, and no body is ever held whole in memory.
//
// States: running -> done (whole body in, length as announced)
//                 -> failed (origin error, stall, cut short).
// A client's stream ends cleanly only in "done"; in "failed" it is cut
// (the connection closes before the end of the body), so no client takes
// a partial body for a whole one.

import { closeSync, openSync, readSync } from "node:fs";
import type { EntryHead, EntryWriter } from "./entry-file.ts";
import { Once } from "../util/once.ts";

type SpoolState = "running" | "done" | "failed";

const READ_CHUNK = 1 << 20;

export class Spool {
  state: SpoolState = "running";
  error: Error | null = null;
  /** Body bytes in the file (what a client behind may read). */
  written = 0;
  /** The body is longer than may be kept: it is still served, then discarded. */
  overLimit = false;
  head: EntryHead | null = null;
  private readers = 0;
  private readonly rfd: number;
  private fdClosed = false;
  /** The fill is over (kept or dropped): no new readers will come. */
  private retired = false;
  private waiters: ((chunk: { at: number; data: Uint8Array } | null) => void)[] = [];
  readonly finished: Promise<void>;
  private resolveFinished!: () => void;

  constructor(
    private readonly writer: EntryWriter,
    /** Content-Length of the origin's answer, if it sent one. */
    readonly expected: number | null,
  ) {
    this.rfd = openSync(writer.tmp, "r");
    this.finished = new Promise((r) => (this.resolveFinished = r));
  }

  /**
   * Copies the origin's body into the file. Resolves when the download is
   * over (see `state`); never rejects. Past `limit` bytes the body is still
   * copied for the clients but marked overLimit.
   */
  async run(body: AsyncIterable<Uint8Array>, limit: number, received?: (n: number) => void): Promise<void> {
    try {
      for await (const chunk of body) {
        received?.(chunk.length);
        if (limit > 0 && this.written + chunk.length > limit) this.overLimit = true;
        this.notify({ at: this.written, data: chunk });
        await this.writer.write(chunk);
        this.written += chunk.length;
        this.notify(null);
      }
      if (this.expected !== null && this.written !== this.expected) {
        throw new Error(`origin sent ${this.written} of the ${this.expected} bytes it announced`);
      }
      this.head = await this.writer.finish();
      this.state = "done";
    } catch (err) {
      this.error = err as Error;
      this.state = "failed";
      await this.writer.close();
    } finally {
      this.notify(null);
      this.maybeCloseFd();
      this.resolveFinished();
    }
  }

  private waitForChange(): Promise<{ at: number; data: Uint8Array } | null> {
    return new Promise((r) => this.waiters.push(r));
  }

  private notify(chunk: { at: number; data: Uint8Array } | null): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r(chunk);
  }

  /** No more clients will join (the fill is settled): the file closes when the last reader is done. */
  retire(): void {
    this.retired = true;
    this.maybeCloseFd();
  }

  private maybeCloseFd(): void {
    if (this.retired && this.state !== "running" && this.readers === 0 && !this.fdClosed) {
      this.fdClosed = true;
      try {
        closeSync(this.rfd);
      } catch {}
    }
  }

  /**
   * The whole body for one client, or null when it is too late to join (the
   * download failed, or the fill is over and its file closed). A Bun
   * "direct" stream: bytes go to the socket with its backpressure, one
   * pull() call.
   */
  attach(): ReadableStream<Uint8Array> | null {
    if (this.fdClosed || this.state === "failed") return null;
    this.readers++;
    const released = new Once(() => {
      this.readers--;
      this.maybeCloseFd();
    });
    const release = released.run;
    return new ReadableStream<Uint8Array>({
      type: "direct",
      pull: (c) => this.feed(c, () => released.done, release),
      cancel: () => release(),
    } as Bun.DirectUnderlyingSource<Uint8Array>) as ReadableStream<Uint8Array>;
  }

  private async feed(c: ReadableStreamDirectController, released: () => boolean, release: () => void): Promise<void> {
    let pos = 0;
    const send = async (data: Uint8Array): Promise<boolean> => {
      const w = c.write(data);
      return !(typeof w !== "number" && (await w) === 0); // 0: the client is gone
    };
    try {
      for (;;) {
        if (released()) return;
        if (pos < this.written) {
          const data = this.readAt(pos, Math.min(READ_CHUNK, this.written - pos));
          pos += data.length;
          if (!(await send(data))) return release();
        } else if (this.state === "done") {
          await c.end();
          return release();
        } else if (this.state === "failed") {
          release();
          return cut(c, `download not completed: ${this.error?.message ?? "failed"}`);
        } else {
          const chunk = await this.waitForChange();
          if (chunk && chunk.at === pos && !released()) {
            pos += chunk.data.length;
            if (!(await send(chunk.data))) return release();
          }
        }
      }
    } catch (err) {
      release();
      cut(c, (err as Error).message);
    }
  }

  private readAt(pos: number, n: number): Uint8Array {
    const buf = new Uint8Array(n);
    const got = readSync(this.rfd, buf, 0, n, this.writer.bodyStart + pos);
    if (got <= 0) throw new Error("revproxy: spool file shrank");
    return got === n ? buf : buf.subarray(0, got);
  }
}

/**
 * Ends a client's body with an error, so its connection is cut before the
 * end of the body. A string, not an Error: Bun logs the reason of a failed
 * body, and for an Error prints a source excerpt.
 */
function cut(c: ReadableStreamDirectController, message: string): void {
  (c.close as (reason: unknown) => void)(`gostash revproxy: ${message}`);
}
