// Direct plugin mode: a session over the process's stdin and stdout.
//
// Responses are gathered while one input chunk is processed and written in
// one go. Writes go through a single Bun FileSink so they are never
// interleaved (concurrent Bun.write calls on stdout corrupt each other), and
// the sink is flushed before the process exits (process.exit drops buffered
// stdout).

import { CacheProgSession, FramingError, type CacheHandler, type SessionHooks } from "./session.ts";

export interface StdioResult {
  reason: "close" | "eof" | "framing";
  error?: Error;
}

export async function serveStdio(handler: CacheHandler, hooks: SessionHooks = {}): Promise<StdioResult> {
  const sink = Bun.stdout.writer({ highWaterMark: 64 * 1024 });
  let queued = false;
  const flush = () => {
    queued = false;
    void sink.flush();
  };
  const out = {
    write(line: string) {
      sink.write(line);
      if (!queued) {
        queued = true;
        queueMicrotask(flush);
      }
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

  let framing: FramingError | null = null;
  const reader = Bun.stdin.stream().getReader();
  const readLoop = (async () => {
    try {
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
  await sink.flush();
  if (framing) return { reason: "framing", error: framing };
  return { reason: doneReason };
}
