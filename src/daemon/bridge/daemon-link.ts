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

  /**
   * Writes all of bytes, waiting for drains; false if the link closed or
   * stopped being wanted first. Synchronous (no promise) when the kernel
   * takes everything at once, as it mostly does: this is the hot path.
   */
  send(bytes: Uint8Array, wanted: () => boolean): boolean | Promise<boolean> {
    if (bytes.length === 0) return true;
    const off = this.write(bytes, 0, wanted);
    return off < 0 ? false : off === bytes.length ? true : this.sendRest(bytes, off, wanted);
  }

  private async sendRest(bytes: Uint8Array, off: number, wanted: () => boolean): Promise<boolean> {
    while (off < bytes.length) {
      await new Promise<void>((r) => (this.wakeDrain = r));
      off = this.write(bytes, off, wanted);
      if (off < 0) return false;
    }
    return true;
  }

  /** Writes what the kernel takes of bytes[off..]; the new offset, or -1 if the link closed or is not wanted. */
  private write(bytes: Uint8Array, off: number, wanted: () => boolean): number {
    if (!wanted() || this.closed) return -1;
    const n = this.sock.write(bytes, off, bytes.length - off);
    return n < 0 ? -1 : off + n;
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
