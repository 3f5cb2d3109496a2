// Limits in front of the daemon's HTTP handler, itself a `Request ->
// Response` function like the router it wraps:
//
// - at most maxInFlight requests are handled at once; one more gets 503
//   with Retry-After (http_busy). /healthz and /metrics are never refused
//   and not counted: a monitor must still see a busy daemon. A request is
//   "handled" until its response is ready (headers); a body still streaming
//   to a slow client is bounded by the HTTP idle timeout instead
//   (src/commands/serve.ts).
// - a request body larger than maxBody gets 413 (http_too_large): by its
//   Content-Length before anything is read, and a chunked body is read up
//   to the limit and no further. No endpoint needs a body today (the module
//   proxy is GET/HEAD), so the default is small.
//
// Each refusal names the flag that raises the limit; the first of each kind
// is a warning, later ones are only counted.

import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { formatBytes } from "../util/bytes.ts";
import { text, type HttpHandler } from "./router.ts";

export interface HttpLimits {
  /** Requests handled at once (0: no limit). */
  maxInFlight: number;
  /** Largest request body in bytes (0: no limit). */
  maxBody: number;
  metrics: Metrics;
  logger: Logger;
  /** The gauge of requests being handled (one per limited service). */
  gauge?: string;
}

/** Paths answered whatever the load. */
const EXEMPT = new Set(["/healthz", "/metrics"]);

/** Seconds a refused client is told to wait. */
const RETRY_AFTER_S = 1;

export function limitHttp(next: HttpHandler, o: HttpLimits): HttpHandler {
  const { metrics, logger } = o;
  let inFlight = 0;
  metrics.gauge(o.gauge ?? "http_in_flight", () => inFlight);
  const warned = new Set<string>();
  const refuse = (counter: string, status: number, message: string, headers: Record<string, string> = {}): Response => {
    metrics.inc(counter);
    if (warned.has(counter)) logger.debug(`http: ${message}`);
    else {
      warned.add(counter);
      logger.warn(`http: ${message} (counted in ${counter} from now on)`);
    }
    return text(status, `${message}\n`, headers);
  };
  const tooLarge = (n: number, exact: boolean) =>
    refuse(
      "http_too_large",
      413,
      `request body of ${exact ? "" : "more than "}${formatBytes(n)} is over the limit of ${formatBytes(o.maxBody)} (raise it with --max-http-body / GOSTASH_MAX_HTTP_BODY)`,
    );

  return async (req) => {
    if (o.maxBody > 0 && req.body) {
      const len = req.headers.get("content-length");
      if (len !== null) {
        if (Number(len) > o.maxBody) return tooLarge(Number(len), true);
      } else {
        // Chunked: read it, up to the limit.
        const parts: Uint8Array[] = [];
        let n = 0;
        const reader = req.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          n += value.length;
          if (n > o.maxBody) {
            void reader.cancel().catch(() => {});
            return tooLarge(o.maxBody, false);
          }
          parts.push(value);
        }
        req = new Request(req, { body: Buffer.concat(parts) });
      }
    }
    if (EXEMPT.has(new URL(req.url).pathname)) return next(req);
    if (o.maxInFlight > 0 && inFlight >= o.maxInFlight) {
      return refuse(
        "http_busy",
        503,
        `busy: ${inFlight} requests being handled (raise the limit with --max-http-requests / GOSTASH_MAX_HTTP_REQUESTS, now ${o.maxInFlight}); retry shortly`,
        { "Retry-After": String(RETRY_AFTER_S) },
      );
    }
    inFlight++;
    try {
      return await next(req);
    } finally {
      inFlight--;
    }
  };
}
