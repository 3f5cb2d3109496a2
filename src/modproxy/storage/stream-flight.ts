// One upstream fetch per missing zip, however many clients ask at once.
//
// A zip's `Flight` is registered the moment the first request finds the zip
// missing, before the upstream is asked (serve/zip.ts starts it in the same
// synchronous step as the lookup), so it is the zip path's only
// single-flight: every request that comes while the upstream is asked, or
// while the body downloads, joins it. Its states:
//
//   connecting   the source (the bucket, an upstream, the go command) is asked
//   running      the body is written to a temp file next to its final place
//   validating   the whole body is in; validate.ts reads it
//   stored       committed into the store (or found stored already: nothing fetched)
//   missing      the source has no such file (404/410)
//   failed       the source, the download or the validation failed
//
// Every client that asks while it runs — including late joiners — reads
// the temp file from byte 0 through a shared descriptor, waiting for more
// bytes when it catches up with the download. So one download feeds storage
// and all clients at once, a slow client never slows the upstream (the disk
// absorbs the difference), and no zip is ever held whole in memory.
//
// A client stream ends cleanly only once the whole file has arrived AND
// passed validation (module/validate.ts). A download that fails, is cut, is too big
// or is refused by validation errors every client stream instead, so no
// client ever sees a clean end of a body the cache would not keep; the temp
// file is removed and nothing is stored.
//
// Small answers (.info, .mod, list, sumdb) share one promise per key
// instead (util/singleflight.ts, small-cache.ts).

import { closeSync, openSync, readSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { Once } from "../../util/once.ts";

export type FlightState = "connecting" | "running" | "validating" | "stored" | "missing" | "failed";

/** What the source of a flight answered. */
export type FlightSource =
  | { kind: "body"; body: ReadableStream<Uint8Array>; size: number | null }
  /** Already in the store (a flight that ended just before this one began stored it). */
  | { kind: "stored" }
  | { kind: "missing"; status: 404 | 410; message: string };

export interface FlightSteps {
  limit: number;
  validate: (tmp: string) => Promise<void>;
  commit: (tmp: string) => Promise<void>;
  discard: (tmp: string) => Promise<void>;
}

const READ_CHUNK = 1024 * 1024;

export class Flight {
  state: FlightState = "connecting";
  error: Error | null = null;
  /** Why the source had nothing (state "missing"). */
  missing: { status: 404 | 410; message: string } | null = null;
  /** A body was downloaded (not set when the source answered "stored" or "missing"). */
  downloaded = false;
  /** Bytes on disk (late joiners read up to here). */
  written = 0;
  /** Bytes received from the upstream (caught-up clients are sent these from memory). */
  received = 0;
  /** Size announced by the upstream, if it did. */
  expected: number | null = null;
  private readers = 0;
  private rfd: number | null = null;
  private closed = false;
  private wake: ((chunk: { at: number; data: Uint8Array } | null) => void)[] = [];
  /** Resolves once the body flows (state "running") or the flight is over. */
  readonly connected: Promise<void>;
  private resolveConnected!: () => void;
  readonly finished: Promise<void>;
  private resolveFinished!: () => void;

  /** The temp file, chosen (and its directory made) only once there is a body to write. */
  tmp: string | null = null;

  constructor(private readonly tempPath: () => string) {
    this.connected = new Promise((r) => (this.resolveConnected = r));
    this.finished = new Promise((r) => (this.resolveFinished = r));
  }

  /** Over: stored, missing or failed. */
  get over(): boolean {
    return this.state === "stored" || this.state === "missing" || this.state === "failed";
  }

  /**
   * Wait until more bytes land (then with the chunk and its offset, so a
   * client that was caught up sends it on without reading it back from
   * disk) or the state changes (null).
   */
  private changed(): Promise<{ at: number; data: Uint8Array } | null> {
    return new Promise((r) => this.wake.push(r));
  }

  private notify(chunk: { at: number; data: Uint8Array } | null = null): void {
    const w = this.wake;
    this.wake = [];
    for (const r of w) r(chunk);
  }

  /**
   * Asks the source, then downloads its body into the temp file, validates
   * it and commits it. Resolves when the flight is over (check `state`);
   * never rejects.
   */
  async run(source: () => Promise<FlightSource>, steps: FlightSteps): Promise<void> {
    try {
      const s = await source();
      if (s.kind === "body") {
        this.expected = s.size;
        this.downloaded = true;
        this.state = "running";
        this.resolveConnected();
        await this.download(s.body, steps);
        this.state = "stored";
      } else if (s.kind === "missing") {
        this.missing = { status: s.status, message: s.message };
        this.state = "missing";
      } else this.state = "stored";
    } catch (err) {
      this.error = err as Error;
      this.state = "failed";
      if (this.tmp !== null) await steps.discard(this.tmp);
    } finally {
      this.notify();
      this.maybeClose();
      this.resolveConnected();
      this.resolveFinished();
    }
  }

  /** Writes `body` to the temp file as it arrives, then validates and commits it; throws on any failure. */
  private async download(body: ReadableStream<Uint8Array>, steps: FlightSteps): Promise<void> {
    // Each chunk goes to the clients that are caught up at once, from
    // memory; the disk write runs on the fs thread pool meanwhile, so the
    // event loop (which also sends to the clients) does not wait for it.
    let wfh: FileHandle | null = null;
    const tmp = (this.tmp = this.tempPath());
    try {
      wfh = await open(tmp, "w", 0o644);
      this.rfd = openSync(tmp, "r");
      const reader = body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          if (this.written + value.length > steps.limit) throw new Error(`body larger than ${steps.limit} bytes`);
          const at = this.received;
          this.received += value.length;
          this.notify({ at, data: value });
          let off = 0;
          while (off < value.length) {
            const { bytesWritten } = await wfh.write(value, off, value.length - off, at + off);
            off += bytesWritten;
          }
          this.written += value.length;
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
      await steps.validate(tmp);
      await steps.commit(tmp);
    } finally {
      if (wfh) await wfh.close().catch(() => {});
    }
  }

  private maybeClose(): void {
    if (this.over && this.readers === 0 && !this.closed) {
      this.closed = true;
      if (this.rfd !== null) {
        try {
          closeSync(this.rfd);
        } catch {}
      }
    }
  }

  /**
   * A stream of the whole file for one client, or null if too late to join.
   * A Bun "direct" stream: the HTTP server calls pull() once and the bytes
   * go straight to the socket (with its backpressure), without a promise
   * round trip per chunk. `onSent` is told of every chunk handed to the
   * client (the metrics of what was served).
   */
  attach(onSent?: (bytes: number) => void): ReadableStream<Uint8Array> | null {
    if (this.closed || this.state === "connecting" || this.state === "failed" || this.state === "missing") return null;
    this.readers++;
    const released = new Once(() => {
      this.readers--;
      this.maybeClose();
    });
    const release = released.run;
    return new ReadableStream<Uint8Array>({
      type: "direct",
      pull: async (c) => {
        let pos = 0;
        try {
          for (;;) {
            if (released.done) return;
            if (pos < this.written && this.rfd !== null) {
              const n = Math.min(READ_CHUNK, this.written - pos);
              const buf = new Uint8Array(n);
              const got = readSync(this.rfd, buf, 0, n, pos);
              if (got <= 0) throw new Error("temp file shrank");
              pos += got;
              onSent?.(got);
              const w = c.write(got === n ? buf : buf.subarray(0, got));
              if (typeof w !== "number" && (await w) === 0) return release(); // client gone
              continue;
            }
            if (this.state === "stored") {
              await c.end();
              return release();
            }
            if (this.state === "failed") {
              fail(c, `download not kept: ${this.error?.message ?? "failed"}`);
              return release();
            }
            const chunk = await this.changed();
            if (chunk && chunk.at === pos && !released.done) {
              pos += chunk.data.length;
              onSent?.(chunk.data.length);
              const w = c.write(chunk.data);
              if (typeof w !== "number" && (await w) === 0) return release();
            }
          }
        } catch (err) {
          release();
          fail(c, (err as Error).message);
        }
      },
      cancel: () => release(),
    } as Bun.DirectUnderlyingSource<Uint8Array>) as ReadableStream<Uint8Array>;
  }
}

/**
 * Fails a direct stream (the client's connection is cut before the end of
 * the chunked body, so it cannot take it for complete). A string, not an
 * Error: Bun logs the reason of a failed response body, and for an Error
 * it prints a source excerpt (a very long line in the compiled binary).
 */
function fail(c: ReadableStreamDirectController, message: string): void {
  (c.close as (reason: unknown) => void)(`gostash modproxy: ${message}`);
}

export class StreamFlights {
  private readonly flights = new Map<string, Flight>();

  get(key: string): Flight | undefined {
    return this.flights.get(key);
  }

  /** Registers a new flight; it is removed once over. */
  start(key: string, tempPath: () => string): Flight {
    const f = new Flight(tempPath);
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
