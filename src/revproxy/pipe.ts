// Two Bun sockets joined: bytes from one are written to the other, with
// backpressure both ways. Bun's socket write() takes what the kernel
// accepts and returns how much that was; the rest is kept here and sent on
// the next `drain`, and the sending side is paused meanwhile, so a slow
// reader never makes this process buffer a fast writer's bytes (a 200 MB
// download through a slow client costs one chunk of memory, not 200 MB).
//
// A FIN from one side is passed on once everything before it was sent
// (half-close); when either side closes for good, the other is ended after
// its pending bytes. An optional idle timeout closes both when no byte
// moved either way for that long.

import type { Socket } from "bun";

/** One side of a pipe: its socket and what is waiting to be written to it. */
class PipeEnd {
  pending: Uint8Array[] = [];
  ended = false;
  closed = false;
  constructor(readonly socket: Socket<unknown>) {}

  /** Writes what it can; false when some bytes wait for `drain`. */
  write(chunk: Uint8Array): boolean {
    if (this.closed) return true;
    if (this.pending.length) {
      this.pending.push(chunk);
      return false;
    }
    const n = this.socket.write(chunk);
    if (n >= chunk.length) return true;
    this.pending.push(chunk.subarray(Math.max(0, n)));
    return false;
  }

  /** Sends pending bytes; true when none are left. */
  flush(): boolean {
    while (this.pending.length && !this.closed) {
      const chunk = this.pending[0]!;
      const n = this.socket.write(chunk);
      if (n >= chunk.length) this.pending.shift();
      else {
        this.pending[0] = chunk.subarray(Math.max(0, n));
        return false;
      }
    }
    return true;
  }
}

export class Pipe {
  private readonly a: PipeEnd;
  private readonly b: PipeEnd;
  private finished = false;

  /**
   * Joins a and b. The caller routes each socket's events here: data ->
   * fromA/fromB, drain -> drained, end -> endOf, close/error -> closedOf.
   */
  constructor(
    a: Socket<unknown>,
    b: Socket<unknown>,
    private readonly o: { idleSec?: number; onFinish?: () => void } = {},
  ) {
    this.a = new PipeEnd(a);
    this.b = new PipeEnd(b);
    this.touch();
  }

  private endOfSocket(s: Socket<unknown>): { self: PipeEnd; other: PipeEnd } {
    return s === this.a.socket ? { self: this.a, other: this.b } : { self: this.b, other: this.a };
  }

  /** Bytes read from socket `from`: on to the other side. */
  forward(from: Socket<unknown>, chunk: Uint8Array): void {
    const { self, other } = this.endOfSocket(from);
    this.touch();
    if (!other.write(chunk)) self.socket.pause();
  }

  /** `drain` on socket s: send what waits for it, then let the other side read again. */
  drained(s: Socket<unknown>): void {
    const { self, other } = this.endOfSocket(s);
    if (!self.flush()) return;
    if (!other.closed) other.socket.resume();
    if (self.ended) self.socket.end();
  }

  /** FIN from socket s: pass it on after the bytes before it. */
  endOf(s: Socket<unknown>): void {
    const { other } = this.endOfSocket(s);
    other.ended = true;
    if (!other.pending.length) other.socket.end();
  }

  /** Socket s is closed: end the other once its pending bytes are out. */
  closedOf(s: Socket<unknown>): void {
    const { self, other } = this.endOfSocket(s);
    if (self.closed) return;
    self.closed = true;
    self.pending = [];
    if (other.closed) return this.finish();
    other.ended = true;
    if (!other.pending.length) other.socket.end();
  }

  /** Closes both at once (idle timeout, shutdown). */
  destroy(): void {
    for (const e of [this.a, this.b]) {
      e.pending = [];
      if (!e.closed) e.socket.terminate();
    }
    this.finish();
  }

  private touch(): void {
    if (!this.o.idleSec) return;
    // Bun's socket timeout fires once unless set again: re-arm it on traffic.
    this.a.socket.timeout(this.o.idleSec);
    this.b.socket.timeout(this.o.idleSec);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.o.onFinish?.();
  }
}
