// The bridge's stdout: the GOCACHEPROG protocol towards `go`, and nothing
// else ever (logs go to stderr).
//
// Complete lines only, written synchronously: a blocked stdout blocks the
// socket reads (backpressure towards the daemon). If stdout is non-blocking
// and full (EAGAIN), the rest is queued, the daemon socket is paused and
// the write retried. `go` waits for our stdout to close after its close
// request is answered, not for our exit: it is closed as soon as that
// answer is out.

import { releaseStdout, writeFdSync } from "../../util/std-output.ts";

export interface GoOutputHooks {
  /** stdout is full: stop reading from the daemon. */
  blocked(): void;
  /** stdout took everything queued: read from the daemon again. */
  unblocked(): void;
  /** `go` is gone (EPIPE): nothing left to bridge. */
  broken(): void;
}

/** How bytes reach stdout: the offset written up to (short if full), or a throw (gone). */
export type WriteFd = (bytes: Uint8Array) => number;

/** How long a full stdout is left before the write is retried. */
const RETRY_MS = 1;

export class GoOutput {
  /** Bytes stdout did not take yet (copies: the callers' chunks are not ours to keep). */
  private readonly queue: Uint8Array[] = [];
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private afterDrain: (() => void) | null = null;
  private closeAnswered = false;
  private released = false;
  private gone = false;

  constructor(
    private readonly hooks: GoOutputHooks,
    private readonly writeFd: WriteFd = (bytes) => writeFdSync(1, bytes),
    private readonly release: () => void = releaseStdout,
  ) {}

  /** `go` is gone: nothing written reaches it any more. */
  get broken(): boolean {
    return this.gone;
  }

  write(chunk: Uint8Array): void {
    if (this.gone || this.released) return;
    if (this.queue.length) {
      this.queue.push(new Uint8Array(chunk));
      return;
    }
    let off: number;
    try {
      off = this.writeFd(chunk);
    } catch {
      this.gone = true;
      this.queue.length = 0;
      this.hooks.broken();
      return;
    }
    if (off >= chunk.length) return;
    this.queue.push(new Uint8Array(chunk.subarray(off)));
    this.hooks.blocked();
    this.retryTimer ??= setTimeout(() => this.retry(), RETRY_MS);
  }

  /** Runs f once everything written so far is out (at once if it is, or if `go` is gone). */
  whenDrained(f: () => void): void {
    if (!this.queue.length || this.gone) f();
    else this.afterDrain = f;
  }

  /** The answer to `go`'s close request is among what is being written. */
  markCloseAnswered(): void {
    this.closeAnswered = true;
  }

  /** Closes stdout once the answer to close is out: `go` waits for that EOF, not for our exit. */
  releaseIfAnswered(): void {
    if (!this.closeAnswered || this.released || this.gone || this.queue.length) return;
    this.released = true;
    this.release();
  }

  private retry(): void {
    this.retryTimer = null;
    const pending = this.queue.splice(0);
    for (let i = 0; i < pending.length; i++) {
      this.write(pending[i]!);
      if (this.queue.length || this.gone) {
        this.queue.push(...pending.slice(i + 1));
        return;
      }
    }
    this.hooks.unblocked();
    this.releaseIfAnswered();
    const then = this.afterDrain;
    this.afterDrain = null;
    then?.();
  }
}
