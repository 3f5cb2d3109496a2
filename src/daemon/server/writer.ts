// The answers to one client, on their way out.
//
// Response lines are batched per tick (one socket write for all the lines
// the session produced in that tick) and written with Bun's socket write(),
// which accepts only what the kernel takes: the rest is kept and resent on
// `drain`. While more than OUT_HIGH bytes wait, reading from that client
// pauses (a client that never reads cannot grow our memory).

import type { ReadPause } from "./read-pause.ts";

/** Bytes kept for a client that is not reading before its input is paused. */
export const OUT_HIGH = 1 << 20;

/** What writing needs of a socket (Bun's socket has these). */
export interface WritableSocket {
  /** Returns the bytes the kernel took (possibly fewer than given), or < 0 if the socket is closed. */
  write(data: Uint8Array): number;
  end(): void;
}

export class ConnectionWriter {
  /** Lines not yet encoded, and bytes the kernel did not take yet. */
  private lines: string[] = [];
  private backlog: Buffer | null = null;
  private scheduled = false;
  private ending = false;
  private closed = false;

  constructor(
    private readonly sock: WritableSocket,
    private readonly pause: Pick<ReadPause, "set">,
    /** Some bytes went out (the connection is not idle). */
    private readonly onSent: () => void,
  ) {}

  /** Queues a line; it goes out with the others of this tick. */
  write(line: string): void {
    if (this.closed) return;
    this.lines.push(line);
    this.schedule();
  }

  /** Writes a line at once (the capability line on open). */
  writeNow(line: string): void {
    this.lines.push(line);
    this.flush();
  }

  /** Nothing is waiting to go out. */
  get empty(): boolean {
    return this.backlog === null && this.lines.length === 0;
  }

  /** Once everything is out, end the socket (the conversation is over). */
  endWhenFlushed(): void {
    this.ending = true;
    this.schedule();
  }

  /** Drops the bytes the kernel has not taken (a broken conversation: nothing useful left to say). */
  discardBacklog(): void {
    this.backlog = null;
  }

  /** The socket is gone: nothing is written any more. */
  close(): void {
    this.closed = true;
  }

  /** Writes what the kernel takes now (called per tick, and on `drain`). */
  flush(): void {
    this.scheduled = false;
    if (this.closed) return;
    if (this.lines.length) {
      const fresh = Buffer.from(this.lines.join(""));
      this.lines = [];
      this.backlog = this.backlog ? Buffer.concat([this.backlog, fresh]) : fresh;
    }
    if (this.backlog) {
      const n = this.sock.write(this.backlog);
      if (n < 0) return; // closed under us; the connection's close cleans up
      if (n > 0) this.onSent();
      this.backlog = n >= this.backlog.length ? null : this.backlog.subarray(n);
    }
    if (this.backlog && this.backlog.length > OUT_HIGH) this.pause.set("output", true);
    else if (!this.backlog) this.pause.set("output", false);
    if (!this.backlog && this.ending) this.sock.end();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => this.flush());
  }
}
