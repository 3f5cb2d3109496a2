// Direct plugin mode: a session over the process's stdin and stdout.
//
// Responses are gathered while one input chunk is processed (or, with an
// asynchronous handler, until the next microtask) and written in one go
// with synchronous writes, so they go out whole and in order: a Bun
// FileSink flushed without waiting for its previous flush wrote later
// answers first when the reader was slow (seen with 20,000 gets at once on
// a loaded machine), and process.exit would drop what a stream still holds.
//
// While the handler answers synchronously and waits for nothing (its
// readMayBlock: the local disk cache always, the tiered cache until its
// first local miss, put or request), stdin is read with blocking reads and
// the answers to each chunk written with one blocking write: a warm `go
// build std` makes about a thousand gets with one or two in flight, so
// every trip through the event loop and a ReadableStream (tens of
// microseconds) shows in the build time, while a blocked read() returns as
// soon as `go` writes. From the first chunk after which the handler needs
// the event loop (an answer still pending, an upload queued), the stream
// reader takes over for the rest of the session: a blocked read would
// stall that work, and the go command waiting on it.

import { readSync } from "node:fs";
import { releaseStdout, writeFdSync } from "../util/std-output.ts";
import { CacheProgSession, FramingError, type CacheHandler, type SessionHooks } from "./session.ts";

export interface StdioResult {
  reason: "close" | "eof" | "framing";
  error?: Error;
}

export async function serveStdio(handler: CacheHandler, hooks: SessionHooks = {}): Promise<StdioResult> {
  const mayBlock = () => handler.readMayBlock?.() === true;
  let blocking = mayBlock();
  let pending = "";
  let queued = false;
  /** `go` went away (EPIPE): nothing more can be answered. */
  let gone = false;
  /** Writes what is pending; throws InputOver when `go` is gone. */
  const answerPending = () => {
    const text = pending;
    pending = "";
    if (text && !gone) writeAll(text);
  };
  const flushQueued = () => {
    queued = false;
    try {
      answerPending();
    } catch (err) {
      if (!(err instanceof InputOver)) throw err;
      gone = true;
    }
  };
  const out = {
    write(line: string) {
      pending += line;
      if (blocking || queued) return;
      queued = true;
      queueMicrotask(flushQueued);
    },
  };

  let doneReason: "close" | "eof" = "eof";
  let closed!: () => void;
  const closedPromise = new Promise<void>((r) => (closed = r));
  const session = new CacheProgSession(handler, out, {
    ...hooks,
    onDone(reason) {
      doneReason = reason;
      hooks.onDone?.(reason);
      closed();
    },
  });

  if (blocking) {
    const r = readBlocking(session, answerPending, mayBlock);
    if (r instanceof FramingError) return { reason: "framing", error: r };
    if (r === "close") {
      // The handler closes synchronously, but the session answers `close`
      // from a promise: wait for it, then write it like every other answer.
      // `go` closes our stdin only after it has read that answer.
      await closedPromise;
      try {
        answerPending();
      } catch (err) {
        if (!(err instanceof InputOver)) throw err;
      }
      releaseStdout();
      return { reason: doneReason };
    }
    blocking = false;
    if (r === "eof") {
      await session.end();
      return { reason: doneReason };
    }
  }

  let framing: FramingError | null = null;
  const readLoop = (async () => {
    try {
      const reader = Bun.stdin.stream().getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        session.push(value);
      }
      await session.end();
    } catch (err) {
      if (!(err instanceof FramingError)) throw err;
      framing = err;
    }
  })();

  // Done when `close` has been answered, or input ended and all is answered;
  // `go` closes our stdin only after it has read the close answer.
  await Promise.race([closedPromise, readLoop]);
  if (!framing) await closedPromise;
  flushQueued();
  if (framing) return { reason: "framing", error: framing };
  // Every answer is out: `go` may go on (what is left of our exit must not delay it).
  releaseStdout();
  return { reason: doneReason };
}

/**
 * Feeds the session from blocking reads of stdin until `close` arrives or
 * input ends; "async" when the stream reader must take over: the handler
 * needs the event loop now, or stdin turns out to be non-blocking (left so
 * by whoever started us).
 */
function readBlocking(session: CacheProgSession, answer: () => void, mayBlock: () => boolean): "close" | "eof" | "async" | FramingError {
  const buf = new Uint8Array(256 * 1024);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EAGAIN" || code === "EWOULDBLOCK") return "async";
      if (code === "EINTR") continue;
      throw err;
    }
    if (n === 0) return "eof";
    try {
      try {
        session.push(buf.subarray(0, n));
      } finally {
        answer();
      }
    } catch (err) {
      if (err instanceof FramingError) return err;
      if (err instanceof InputOver) return "eof";
      throw err;
    }
    if (session.closeRequested) return "close";
    if (session.pending > 0 || !mayBlock()) return "async";
  }
}

class InputOver extends Error {}

function writeAll(text: string): void {
  const bytes = Buffer.from(text);
  for (let off = 0; off < bytes.length; ) {
    try {
      off = writeFdSync(1, bytes, off);
    } catch (err) {
      // `go` went away: nobody is left to answer; treat it as end of input.
      if ((err as NodeJS.ErrnoException).code === "EPIPE") throw new InputOver();
      throw err;
    }
    // stdout left non-blocking by whoever started us: wait until it drains.
    if (off < bytes.length) Bun.sleepSync(1);
  }
}
