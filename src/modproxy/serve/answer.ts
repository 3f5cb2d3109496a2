// The one way the module proxy and the checksum-database proxy turn what
// they found (a stored file, bytes in memory, "not found", an error) into
// an HTTP answer, and count it, in every mode (online, offline, from the
// bucket). Counters, per family ("modproxy" for module files, "sumdb" for
// the checksum database; <family>_requests is counted where requests are
// dispatched):
//
//   <family>_hits           answered from the store (or derived from it)
//   <family>_misses         fetched for this answer (zips: streamed while fetched)
//   <family>_not_found      404 / 410
//   <family>_errors         any other failure
//   <family>_bytes_served   body bytes of 2xx answers as sent: none for HEAD
//                           or 304, the range for 206, a streamed zip's bytes
//                           as they go out (sentCounter)
//
// A copy served because the upstream failed ("stale") carries
// X-Gostash-Stale and a Warning, and must not be cached downstream.

import type { Metrics } from "../../util/metrics.ts";
import type { SmallAnswer } from "../storage/small-cache.ts";
import { errorText, serveData, serveFile } from "./respond.ts";

export type AnswerFamily = "modproxy" | "sumdb";

export type Answer = (req: Request, a: SmallAnswer, name: string, cacheControl: string) => Response;

export interface AnswerOptions {
  metrics: Metrics;
  family: AnswerFamily;
  /** Cache-Control of 404/410 answers (default errorText's). */
  notFoundCacheControl?: string;
}

const STALE_HEADERS = { Warning: '110 - "Response is Stale"', "X-Gostash-Stale": "1" };

/**
 * The body bytes a built answer sends: the Content-Length of a 200 or 206,
 * nothing for HEAD, 304 or 416. (Reading res.body instead would turn a
 * file body into a stream and lose the zero-copy send of stored files.)
 */
export function bodyBytes(req: Request, res: Response): number {
  if (req.method === "HEAD" || (res.status !== 200 && res.status !== 206)) return 0;
  return Number(res.headers.get("content-length") ?? 0);
}

/** Counts bytes of a body that has no Content-Length (a zip streamed while it downloads) as they are sent. */
export function sentCounter(o: AnswerOptions): (n: number) => void {
  return (n) => o.metrics.inc(`${o.family}_bytes_served`, n);
}

export function answerer(o: AnswerOptions): Answer {
  const count = (name: string, n = 1) => o.metrics.inc(`${o.family}_${name}`, n);
  return (req, a, name, cacheControl) => {
    switch (a.kind) {
      case "file":
      case "data": {
        count(a.hit ? "hits" : "misses");
        const extra: Record<string, string> = a.stale ? STALE_HEADERS : {};
        const ctl = a.stale ? "no-store" : cacheControl;
        const res = a.kind === "file" ? serveFile(req, a, name, ctl, extra) : serveData(req, a.data, a.mtimeMs, name, ctl, extra);
        count("bytes_served", bodyBytes(req, res));
        return res;
      }
      case "notfound":
        count("not_found");
        return errorText(a.status, a.message, o.notFoundCacheControl);
      case "error":
        count("errors");
        return errorText(a.status, a.message);
    }
  };
}
