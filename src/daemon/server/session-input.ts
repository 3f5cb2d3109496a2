// A connection's input on its way into its session, under --max-inflight.
//
// While that many answers of the connection are pending, the session stops
// consuming its input (push() returns early) and the socket is paused; the
// rest is held here and fed in again as answers go out (backpressure, never
// an error). Bytes read before the pause took queue behind the held ones,
// and an EOF that comes while some input is held takes effect once it has
// been fed in.

import type { CacheProgSession } from "../../cacheprog/session.ts";
import type { ReadPause } from "./read-pause.ts";

export interface SessionInputHooks {
  /** The session stopped taking input (the --max-inflight limit was reached). */
  onHold(): void;
  /** The session refused the input (broken framing): nothing more is fed. */
  onBroken(err: unknown): void;
  /** The client's EOF, once every held byte was fed in. */
  onEnd(): void;
}

export class SessionInput {
  /** Input the session has not taken yet (copied: a socket chunk's memory is not ours to keep). */
  private held: Buffer | null = null;
  private endAfterHeld = false;
  private holding = false;
  private stopped = false;

  constructor(
    private readonly session: Pick<CacheProgSession, "push" | "pending">,
    /** Pending answers at which input is held (0: never). */
    private readonly maxInflight: number,
    private readonly pause: Pick<ReadPause, "set">,
    private readonly hooks: SessionInputHooks,
  ) {}

  /** Some input is held back. */
  get busy(): boolean {
    return this.held !== null;
  }

  /** Bytes from the client. */
  push(bytes: Uint8Array): void {
    if (this.stopped) return;
    if (this.held) this.held = Buffer.concat([this.held, bytes]);
    else this.feed(bytes);
  }

  /** The client sent EOF: it takes effect once the held input is in. */
  end(): void {
    if (this.held) this.endAfterHeld = true;
    else this.hooks.onEnd();
  }

  /** An answer went out: feed held input again while there is room. */
  settle(): void {
    if (!this.held || this.stopped) return;
    if (this.session.pending >= this.maxInflight) return;
    const b = this.held;
    this.held = null;
    this.feed(b);
    if (this.held || this.stopped) return;
    this.holding = false;
    this.pause.set("inflight", false);
    if (this.endAfterHeld) this.hooks.onEnd();
  }

  /** Nothing more is fed (the connection is closed or closing). */
  stop(): void {
    this.stopped = true;
    this.held = null;
  }

  private feed(bytes: Uint8Array): void {
    try {
      const full = this.maxInflight > 0 && this.session.pending >= this.maxInflight;
      const n = full ? 0 : this.session.push(bytes);
      if (n >= bytes.length) return;
      this.held = Buffer.from(bytes.subarray(n));
      if (this.holding) return;
      this.holding = true;
      this.hooks.onHold();
      this.pause.set("inflight", true);
    } catch (err) {
      this.stop();
      this.hooks.onBroken(err);
    }
  }
}
