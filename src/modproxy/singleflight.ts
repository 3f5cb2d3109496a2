// One upstream fetch per missing file, however many clients ask at once.
//
// Small answers (.info, .mod, list, @latest, sumdb) share one promise per
// key (`SingleFlight`). Zips share one `Flight`: the upstream body is written
// to a temp file next to its final place as it arrives, and every client
// that asks while it is in flight — including late joiners — reads that temp
// file from byte 0 through a shared descriptor, waiting for more bytes when
// it catches up with the download. So one download feeds storage and all
// clients at once, a slow client never slows the upstream (the disk absorbs
// the difference), and no zip is ever held whole in memory.
//
// A client stream ends cleanly only once the whole file has arrived AND
// passed validation (validate.ts). A download that fails, is cut, is too big
// or is refused by validation errors every client stream instead, so no
// client ever sees a clean end of a body the cache would not keep; the temp
// file is removed and nothing is stored.

import { open, type FileHandle } from "node:fs/promises";

export class SingleFlight<T> {
  private readonly inflight = new Map<string, Promise<T>>();

  /** Runs fn once per key at a time; concurrent callers share its result. */
  do(key: string, fn: () => Promise<T>): { promise: Promise<T>; shared: boolean } {
    const existing = this.inflight.get(key);
    if (existing) return { promise: existing, shared: true };
    const p = fn().finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return { promise: p, shared: false };
  }

  get size(): number {
    return this.inflight.size;
  }
}

type FlightState = "running" | "validating" | "done" | "failed";

const READ_CHUNK = 256 * 1024;

export class Flight {
  state: FlightState = "running";
  error: Error | null = null;
  written = 0;
  /** Size announced by the upstream, if it did. */
  expected: number | null = null;
  private readers = 0;
  private rfh: FileHandle | null = null;
  private closed = false;
  private wake: (() => void)[] = [];
  readonly finished: Promise<void>;
  private resolveFinished!: () => void;

  constructor(readonly tmp: string) {
    this.finished = new Promise((r) => (this.resolveFinished = r));
  }

  /** Wait until more bytes land or the state changes. */
  private changed(): Promise<void> {
    return new Promise((r) => this.wake.push(r));
  }

  private notify(): void {
    const w = this.wake;
    this.wake = [];
    for (const r of w) r();
  }

  /**
   * Downloads `body` into the temp file, then validates it and commits it.
   * Resolves when the flight is over (check `state`); never rejects.
   */
  async run(
    body: ReadableStream<Uint8Array>,
    opts: { limit: number; validate: (tmp: string) => Promise<void>; commit: (tmp: string) => Promise<void>; discard: (tmp: string) => Promise<void> },
  ): Promise<void> {
    let wfh: FileHandle | null = null;
    try {
      wfh = await open(this.tmp, "w", 0o644);
      this.rfh = await open(this.tmp, "r");
      const reader = body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          if (this.written + value.length > opts.limit) throw new Error(`body larger than ${opts.limit} bytes`);
          let off = 0;
          while (off < value.length) {
            const { bytesWritten } = await wfh.write(value, off, value.length - off, this.written);
            off += bytesWritten;
            this.written += bytesWritten;
          }
          this.notify();
        }
      } catch (err) {
        reader.cancel().catch(() => {});
        throw err;
      }
      await wfh.close();
      wfh = null;
      if (this.expected !== null && this.written !== this.expected) {
        throw new Error(`body cut short: ${this.written} of ${this.expected} bytes`);
      }
      this.state = "validating";
      await opts.validate(this.tmp);
      await opts.commit(this.tmp);
      this.state = "done";
    } catch (err) {
      this.error = err as Error;
      this.state = "failed";
      if (wfh) await wfh.close().catch(() => {});
      await opts.discard(this.tmp);
    } finally {
      this.notify();
      this.maybeClose();
      this.resolveFinished();
    }
  }

  private maybeClose(): void {
    if ((this.state === "done" || this.state === "failed") && this.readers === 0 && !this.closed) {
      this.closed = true;
      this.rfh?.close().catch(() => {});
    }
  }

  /** A stream of the whole file for one client, or null if too late to join. */
  attach(): ReadableStream<Uint8Array> | null {
    if (this.closed || this.state === "failed") return null;
    this.readers++;
    let pos = 0;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.readers--;
      this.maybeClose();
    };
    return new ReadableStream<Uint8Array>(
      {
        pull: async (c) => {
          try {
            for (;;) {
              if (pos < this.written && this.rfh) {
                const n = Math.min(READ_CHUNK, this.written - pos);
                const buf = new Uint8Array(n);
                const { bytesRead } = await this.rfh.read(buf, 0, n, pos);
                if (bytesRead <= 0) throw new Error("temp file shrank");
                pos += bytesRead;
                c.enqueue(bytesRead === n ? buf : buf.subarray(0, bytesRead));
                return;
              }
              if (this.state === "done") {
                c.close();
                release();
                return;
              }
              if (this.state === "failed") {
                // A short string, not the Error: Bun logs the reason of an
                // errored response body, with a source excerpt for Errors.
                c.error(`gostash modproxy: download not kept: ${this.error?.message ?? "failed"}`);
                release();
                return;
              }
              await this.changed();
            }
          } catch (err) {
            c.error(err);
            release();
          }
        },
        cancel: () => release(),
      },
      { highWaterMark: 0 },
    );
  }
}

export class StreamFlights {
  private readonly flights = new Map<string, Flight>();

  get(key: string): Flight | undefined {
    return this.flights.get(key);
  }

  /** Registers a new flight; it is removed once over. */
  start(key: string, tmp: string): Flight {
    const f = new Flight(tmp);
    this.flights.set(key, f);
    f.finished.then(() => {
      if (this.flights.get(key) === f) this.flights.delete(key);
    });
    return f;
  }

  get size(): number {
    return this.flights.size;
  }
}
