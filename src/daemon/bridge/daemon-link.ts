// One connection from the bridge to the daemon's plugin socket.
//
// Bun's socket write() accepts only what the kernel takes and does not
// queue the rest, so send() resends the remainder on `drain`, and its caller
// (reading `go`'s stdin) does not read again until it is out: backpressure
// towards `go`. Half-open: after `go`'s EOF the bridge shuts down its write
// side and keeps reading answers.

import { LineAssembler } from "../../cacheprog/framing.ts";
import type { PluginAddress } from "../address.ts";

type Sock = Bun.Socket<undefined>;

/** What the bridge uses of a connection (tests drive it with their own). */
export type Link = Pick<DaemonLink, "closed" | "lines" | "send" | "pause" | "resume" | "shutdown" | "end" | "terminate">;

/** What the socket reports; the bridge decides what each means. */
export interface LinkEvents {
  data(link: Link, chunk: Uint8Array): void;
  /** The daemon half-closed. */
  end(link: Link): void;
  close(link: Link, err?: Error): void;
  error(link: Link, err: Error): void;
}

export class DaemonLink {
  closed = false;
  /** The daemon's output cut into whole lines. */
  readonly lines = new LineAssembler();
  private sock!: Sock;
  /** Resolves a writer waiting for the socket to drain. */
  private wakeDrain: (() => void) | null = null;

  private constructor() {}

  /** Connects, or throws if the daemon does not accept within timeoutMs. */
  static async dial(addr: PluginAddress, timeoutMs: number, events: LinkEvents): Promise<DaemonLink> {
    const link = new DaemonLink();
    const socket = link.handler(events);
    const connecting =
      addr.kind === "unix"
        ? Bun.connect({ unix: addr.path, allowHalfOpen: true, socket })
        : Bun.connect({ hostname: addr.hostname, port: addr.port, allowHalfOpen: true, socket });
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs}ms`)), timeoutMs);
    });
    // A connect that completes after the timeout is hung up at once.
    connecting.then(
      (s) => {
        if (timedOut) s.terminate();
      },
      () => {},
    );
    try {
      link.sock = await Promise.race([connecting, timeout]);
    } catch (err) {
      timedOut = true;
      throw err;
    } finally {
      clearTimeout(timer);
    }
    link.sock.setNoDelay?.(true);
    return link;
  }

  /** Writes all of bytes, waiting for drains; false if the link closed or stopped being wanted first. */
  async send(bytes: Uint8Array, wanted: () => boolean): Promise<boolean> {
    let off = 0;
    while (off < bytes.length) {
      if (!wanted() || this.closed) return false;
      const n = this.sock.write(bytes, off, bytes.length - off);
      if (n < 0) return false;
      off += n;
      if (off < bytes.length) await new Promise<void>((r) => (this.wakeDrain = r));
    }
    return true;
  }

  pause(): void {
    if (!this.closed) this.sock.pause();
  }

  resume(): void {
    if (!this.closed) this.sock.resume();
  }

  /** Our EOF: the daemon answers what is pending, then hangs up. */
  shutdown(): void {
    this.sock.shutdown();
  }

  /** Answers the daemon's EOF with ours. */
  end(): void {
    this.sock.end();
  }

  /** Hangs up at once; a writer waiting for a drain gives up. */
  terminate(): void {
    if (!this.closed) this.sock.terminate();
    this.wake();
  }

  private wake(): void {
    const w = this.wakeDrain;
    this.wakeDrain = null;
    w?.();
  }

  private handler(events: LinkEvents): Bun.SocketHandler<undefined> {
    return {
      data: (_s, chunk) => events.data(this, chunk),
      drain: () => this.wake(),
      end: () => events.end(this),
      close: (_s, err) => {
        this.closed = true;
        this.wake();
        events.close(this, err);
      },
      error: (_s, err) => events.error(this, err),
      connectError() {},
    };
  }
}
