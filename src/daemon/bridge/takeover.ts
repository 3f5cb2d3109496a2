// Serving the rest of a conversation in-process, from the local disk cache,
// after the daemon went away (or refused us).
//
// The unanswered requests are replayed into a local CacheProgSession, in
// their original order (gets and puts are idempotent, so one the daemon had
// already handled does no harm), which then also gets everything `go`
// sends afterwards. One line on stderr says what happened. Only a put too
// large to have been kept (framing.ts, RETAIN_BODY) cannot be replayed: it
// is answered with an error (after its body, if still coming, is skipped);
// `go` must not see errors on small puts, since some of them (the module
// index) fail the build.
//
// The session module is loaded only here, when needed: `gostash connect`
// starts without it.

import type { BodyRemainder, RequestStreamTracker } from "../../cacheprog/framing.ts";
import { CAPABILITY_LINE, encodeErr } from "../../cacheprog/protocol.ts";
import type { CacheHandler, CacheProgSession } from "../../cacheprog/session.ts";

const LOST_PUT = "gostash: the daemon went away before storing this output";

/** Why the daemon is no longer used, for the one line on stderr. */
export interface Loss {
  /** The daemon's address. */
  where: string;
  /** What it did: "closed the connection", "refused this client (...)", ... */
  why: string;
  refused: "busy" | "unauthorized" | null;
}

export interface TakeoverOptions {
  /** Opens the local cache; loaded only now. */
  openLocal(): Promise<{ handler: CacheHandler; where: string }>;
  /** Bytes for `go`'s stdout. */
  write(bytes: Uint8Array): void;
  /** `go` has not seen a capability line yet. */
  needCapability: boolean;
  /** The conversation is over (exit code). */
  finish(code: number): void;
  /** Log lines. */
  stderr(text: string): void;
}

export class Takeover {
  private session: CacheProgSession | null = null;
  /** Input that arrived before the local session was ready. */
  private queue: Uint8Array[] = [];
  /** The rest of a body too large to have been kept (then answered with an error). */
  private skipping: BodyRemainder | null = null;
  private ended = false;

  constructor(
    private readonly tracker: RequestStreamTracker,
    loss: Loss,
    private readonly o: TakeoverOptions,
  ) {
    if (o.needCapability) o.write(Buffer.from(CAPABILITY_LINE));
    this.start(loss).catch((err) => {
      o.stderr(`gostash connect: taking over from the daemon failed: ${(err as Error)?.message ?? err}\n`);
      o.finish(1);
    });
  }

  /** Input from `go`. */
  push(chunk: Uint8Array): void {
    if (!this.session) this.queue.push(chunk);
    else this.route(chunk);
  }

  /** `go` closed our stdin. */
  end(): void {
    this.ended = true;
    if (this.session) void this.close();
  }

  private async start(loss: Loss): Promise<void> {
    const { handler, where: dir } = await this.o.openLocal();
    this.o.stderr(notice(loss, dir));
    const { CacheProgSession } = await import("../../cacheprog/session.ts");
    this.session = new CacheProgSession(handler, { write: (line) => this.o.write(Buffer.from(line)) });
    this.replay();
    for (const c of this.queue.splice(0)) this.route(c);
    if (this.ended) await this.close();
  }

  /** The unanswered requests, in order, then a header cut short at the switch. */
  private replay(): void {
    const r = this.tracker.replay();
    for (const p of r.unkept) this.o.write(Buffer.from(encodeErr(p.id, LOST_PUT)));
    this.skipping = r.cutBody;
    this.feed(r.bytes);
  }

  private route(chunk: Uint8Array): void {
    const cut = this.skipping;
    if (cut) {
      const rest = cut.skip(chunk);
      if (rest === null) return;
      this.skipping = null;
      this.o.write(Buffer.from(encodeErr(cut.id, LOST_PUT)));
      chunk = rest;
    }
    if (chunk.length) this.feed([chunk]);
  }

  private feed(chunks: Uint8Array[]): void {
    try {
      for (const c of chunks) if (c.length) this.session!.push(c);
    } catch (err) {
      this.o.stderr(`gostash connect: ${(err as Error).message}; stopping\n`);
      this.o.finish(1);
    }
  }

  private async close(): Promise<void> {
    try {
      await this.session!.end();
    } catch (err) {
      this.o.stderr(`gostash connect: ${(err as Error).message}\n`);
    }
    this.o.finish(0);
  }
}

function notice(loss: Loss, dir: string): string {
  const { where, why } = loss;
  switch (loss.refused) {
    case "unauthorized":
      return `gostash connect: error: the daemon at ${where} ${why}; check --token / GOSTASH_TOKEN. Serving this build from the local cache ${dir} instead\n`;
    case "busy":
      return `gostash connect: warning: the daemon at ${where} ${why}; serving this build from the local cache ${dir} instead\n`;
    default:
      return `gostash connect: the daemon at ${where} ${why} before the go command was done; finishing this build from the local cache ${dir}\n`;
  }
}
