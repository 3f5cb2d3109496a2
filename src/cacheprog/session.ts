// One GOCACHEPROG conversation: bytes in, response lines out. The same code
// serves direct mode (stdin/stdout) and each daemon connection (a socket).
//
// The session knows nothing about storage: it calls the handler's get, put
// and close callbacks. A get that fails is answered as a miss (an `Err` on a
// get fails the whole `go` command); a put that fails gets an `Err`, which
// `go` tolerates.

import { FramingError, RequestDecoder, type BodySink } from "./decoder.ts";
import { encodeEmpty, encodeErr, encodeHit, encodeMiss, encodePut, type Hit, type Request } from "./protocol.ts";

type MaybePromise<T> = T | Promise<T>;

/** A put in progress: the decoder streams body bytes into it. */
export interface PutWriter extends BodySink {
  /** The body is complete and its size checked; returns the DiskPath. */
  commit(): MaybePromise<string>;
  /** The body was bad or cut short; forget it. */
  abort(): void;
}

export interface CacheHandler {
  get(actionID: string): MaybePromise<Hit | null>;
  /** Start a put; for a zero-size put, commit is called right away. */
  put(actionID: string, outputID: string, size: number): PutWriter;
  /** The client sent `close` (or hung up): flush what must be flushed. */
  close(): MaybePromise<void>;
  /**
   * True while get, put and commit answer without a promise and nothing of
   * the handler's waits for the event loop (an upload, a download, a
   * timer), so the reader may block on its input between requests
   * (stdio.ts reads stdin synchronously then). Asked after every chunk of
   * input; once false, the reader goes asynchronous for the rest of the
   * session. Absent: never.
   */
  readMayBlock?(): boolean;
}

export interface SessionOutput {
  write(line: string): void;
}

export interface SessionHooks {
  /** A request failed on the handler's side (logged, counted). */
  onError?(err: unknown, req: Request): void;
  /** Every request has been answered after `close` or end of input. */
  onDone?(reason: "close" | "eof"): void;
  /** An answer that was waited for went out (pending went down by one). */
  onSettle?(): void;
}

export interface SessionOptions {
  /**
   * Stop consuming input while this many answers are pending (0: never);
   * push() then returns early and the caller holds the rest (backpressure).
   */
  maxInflight?: number;
}

export class CacheProgSession {
  private readonly decoder: RequestDecoder;
  private inFlight = 0;
  private closing: { id: number | null; done: Promise<void> } | null = null;
  private done = false;
  private idle: (() => void) | null = null;
  private readonly puts = new Map<number, PutWriter>();

  constructor(
    private readonly handler: CacheHandler,
    private readonly out: SessionOutput,
    private readonly hooks: SessionHooks = {},
    opts: SessionOptions = {},
  ) {
    const max = opts.maxInflight ?? 0;
    this.decoder = new RequestDecoder({
      request: (req) => this.dispatch(req),
      bodyStart: (req) => this.startPut(req),
      bodyEnd: (req, _n, error) => this.endPut(req, error),
      pause: max > 0 ? () => this.inFlight >= max : undefined,
    });
  }

  /**
   * Feed input bytes; returns how many were consumed (fewer than given only
   * when maxInflight answers are pending). Throws FramingError if the stream
   * is unusable.
   */
  push(chunk: Uint8Array): number {
    if (this.closing) return chunk.length; // anything after close is ignored
    return this.decoder.push(chunk);
  }

  /**
   * Input ended. Resolves when every request is answered and handler
   * closed. Input cut inside a request (go killed mid-put) rejects with the
   * FramingError, but only after the handler is closed all the same: what
   * the command stored still uploads, and its command record ends.
   */
  async end(): Promise<void> {
    let cut: FramingError | null = null;
    try {
      this.decoder.end();
    } catch (err) {
      if (!(err instanceof FramingError)) throw err;
      cut = err;
    } finally {
      for (const [, w] of this.puts) w.abort();
      this.puts.clear();
    }
    // After a `close`, input may end before close is answered: wait for it.
    await (this.closing ? this.closing.done : this.finish(null));
    if (cut) throw cut;
  }

  /** Pending requests (answers not yet written). */
  get pending(): number {
    return this.inFlight;
  }

  get finished(): boolean {
    return this.done;
  }

  /** `close` has arrived: nothing more will be read. */
  get closeRequested(): boolean {
    return this.closing !== null;
  }

  private dispatch(req: Request): void {
    switch (req.command) {
      case "get":
        return this.get(req);
      case "put":
        return this.zeroPut(req);
      case "close":
        void this.finish(req.id);
        return;
      default:
        this.out.write(encodeErr(req.id, `gostash: unknown command ${JSON.stringify(req.command)}`));
    }
  }

  private get(req: Request): void {
    if (!req.actionID) {
      this.out.write(encodeMiss(req.id));
      return;
    }
    let res: MaybePromise<Hit | null>;
    try {
      res = this.handler.get(req.actionID);
    } catch (err) {
      this.hooks.onError?.(err, req);
      res = null;
    }
    if (!(res instanceof Promise)) {
      this.out.write(res ? encodeHit(req.id, res) : encodeMiss(req.id));
      return;
    }
    this.track(
      res.then(
        (hit) => this.out.write(hit ? encodeHit(req.id, hit) : encodeMiss(req.id)),
        (err) => {
          this.hooks.onError?.(err, req);
          this.out.write(encodeMiss(req.id));
        },
      ),
    );
  }

  private checkPut(req: Request): string | null {
    if (!req.actionID) return "put needs a 32-byte ActionID";
    if (!req.outputID) return "put needs a 32-byte OutputID";
    return null;
  }

  private zeroPut(req: Request): void {
    const bad = this.checkPut(req);
    if (bad) {
      this.out.write(encodeErr(req.id, `gostash: ${bad}`));
      return;
    }
    let w: PutWriter;
    try {
      w = this.handler.put(req.actionID!, req.outputID!, 0);
    } catch (err) {
      return this.putFailed(req, err);
    }
    this.commit(req, w);
  }

  private startPut(req: Request): BodySink {
    const bad = this.checkPut(req);
    if (bad) return { write() {} }; // endPut answers with the error
    try {
      const w = this.handler.put(req.actionID!, req.outputID!, req.bodySize);
      this.puts.set(req.id, w);
      return w;
    } catch (err) {
      this.putFailed(req, err);
      // swallow the body; endPut sees no writer and answers nothing more
      return { write() {} };
    }
  }

  private endPut(req: Request, error: string | null): void {
    const w = this.puts.get(req.id);
    this.puts.delete(req.id);
    const bad = this.checkPut(req);
    if (bad) {
      this.out.write(encodeErr(req.id, `gostash: ${bad}`));
      return;
    }
    if (!w) return; // already answered by putFailed
    if (error) {
      w.abort();
      this.out.write(encodeErr(req.id, `gostash: put ${req.id}: ${error}`));
      return;
    }
    this.commit(req, w);
  }

  private commit(req: Request, w: PutWriter): void {
    let res: MaybePromise<string>;
    try {
      res = w.commit();
    } catch (err) {
      return this.putFailed(req, err);
    }
    if (typeof res === "string") {
      this.out.write(encodePut(req.id, res));
      return;
    }
    this.track(
      res.then(
        (path) => this.out.write(encodePut(req.id, path)),
        (err) => this.putFailed(req, err),
      ),
    );
  }

  private putFailed(req: Request, err: unknown): void {
    this.hooks.onError?.(err, req);
    this.out.write(encodeErr(req.id, `gostash: put failed: ${(err as Error)?.message ?? String(err)}`));
  }

  private track(p: Promise<void>): void {
    this.inFlight++;
    void p.finally(() => {
      this.inFlight--;
      this.hooks.onSettle?.();
      if (this.inFlight === 0 && this.idle) {
        const wake = this.idle;
        this.idle = null;
        wake();
      }
    });
  }

  private finish(closeID: number | null): Promise<void> {
    if (this.closing) return this.closing.done;
    const c = { id: closeID, done: Promise.resolve() };
    this.closing = c;
    c.done = this.answerClose(closeID);
    return c.done;
  }

  private async answerClose(closeID: number | null): Promise<void> {
    if (this.inFlight > 0) await new Promise<void>((r) => (this.idle = r));
    try {
      await this.handler.close();
    } catch (err) {
      this.hooks.onError?.(err, { id: closeID ?? -1, command: "close", bodySize: 0 });
    }
    if (closeID !== null) this.out.write(encodeEmpty(closeID));
    this.done = true;
    this.hooks.onDone?.(closeID !== null ? "close" : "eof");
  }
}

export { FramingError };
