// Per-request log lines for `--debug` bits that cover HTTP services
// (2: the module proxy at /mod). A `Request -> Response` decorator: one
// line when the answer's headers are ready, with its status, its size when
// known, and the time taken; the body may still be streaming.
//
//   GET /mod/golang.org/x/mod/@v/v0.20.0.zip 200 123456 12.3ms

import type { HttpHandler } from "./router.ts";

export function logHttpRequests(next: HttpHandler, line: (text: string) => void, wanted: (path: string) => boolean): HttpHandler {
  return async (req) => {
    const path = new URL(req.url).pathname;
    if (!wanted(path)) return next(req);
    const t0 = performance.now();
    try {
      const res = await next(req);
      line(`${req.method} ${path} ${res.status} ${res.headers.get("content-length") ?? "-"} ${(performance.now() - t0).toFixed(1)}ms`);
      return res;
    } catch (err) {
      line(`${req.method} ${path} failed: ${(err as Error)?.message ?? err}`);
      throw err;
    }
  };
}
