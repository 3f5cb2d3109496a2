// `--debug=1` (go-cache-plugin's "build cache requests" bit): one line on
// stderr per get and put a handler answers, with what it answered and how
// long it took. A decorator, so no store knows about it; it keeps the
// handler's readMayBlock (a synchronous get is logged before it
// returns, never through a promise).
//
//   get <action> hit <output> <size> <ms>ms | get <action> miss <ms>ms
//   put <action> <output> <size> <ms>ms     | put <action> failed
//   close

import { DEBUG_BUILD_CACHE, requestLog } from "../util/log.ts";
import type { Hit } from "./protocol.ts";
import type { CacheHandler, PutWriter } from "./session.ts";

const short = (hex: string) => hex.slice(0, 16);
const since = (t0: number) => `${(performance.now() - t0).toFixed(2)}ms`;

export function logRequests(inner: CacheHandler, line: (text: string) => void): CacheHandler {
  const logGet = (actionID: string, t0: number, hit: Hit | null) => {
    line(hit ? `get ${short(actionID)} hit ${short(hit.outputID)} ${hit.size} ${since(t0)}` : `get ${short(actionID)} miss ${since(t0)}`);
    return hit;
  };
  return {
    readMayBlock: () => inner.readMayBlock?.() ?? false,
    get(actionID) {
      const t0 = performance.now();
      const r = inner.get(actionID);
      return r instanceof Promise ? r.then((hit) => logGet(actionID, t0, hit)) : logGet(actionID, t0, r);
    },
    put(actionID, outputID, size): PutWriter {
      const t0 = performance.now();
      const w = inner.put(actionID, outputID, size);
      const done = () => line(`put ${short(actionID)} ${short(outputID)} ${size} ${since(t0)}`);
      return {
        write: (bytes) => w.write(bytes),
        commit() {
          const r = w.commit();
          if (r instanceof Promise) return r.then((path) => (done(), path));
          done();
          return r;
        },
        abort() {
          line(`put ${short(actionID)} failed`);
          w.abort();
        },
      };
    },
    close() {
      line("close");
      return inner.close();
    },
  };
}

/** The handler, logging each request when --debug has the build-cache bit. */
export function withRequestLog(inner: CacheHandler): CacheHandler {
  const line = requestLog(DEBUG_BUILD_CACHE, "build cache");
  return line ? logRequests(inner, line) : inner;
}
