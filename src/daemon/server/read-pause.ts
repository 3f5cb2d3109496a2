// Reading from one client pauses for either of two reasons, each switched
// on and off by its own part: answers are not being read (the writer's
// backlog is over its high-water mark) or too many are pending
// (--max-inflight). The socket reads again only when neither holds.

export type PauseReason = "output" | "inflight";

/** What pausing needs of a socket (Bun's socket has these). */
export interface PausableSocket {
  pause(): void;
  resume(): void;
}

export class ReadPause {
  // Two flags, not a set: set() runs on every flush of every connection.
  private output = false;
  private inflight = false;
  private paused = false;
  private closed = false;

  constructor(private readonly sock: PausableSocket) {}

  set(reason: PauseReason, on: boolean): void {
    if (reason === "output") this.output = on;
    else this.inflight = on;
    const want = this.output || this.inflight;
    if (want === this.paused || this.closed) return;
    this.paused = want;
    if (want) this.sock.pause();
    else this.sock.resume();
  }

  /** The socket is gone: never touch it again. */
  close(): void {
    this.closed = true;
  }
}
