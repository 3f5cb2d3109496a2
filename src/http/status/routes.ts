// The status page's routes on the daemon's HTTP router, both GET (and HEAD)
// only, so nothing here can change state:
//
//   GET /              the page (page.ts): one HTML document, gzip when the
//                      client takes it, with its Content-Security-Policy
//   GET /status.json   what the page shows (data.ts)
//
// Access is the router's: behind requireHttpAuth (src/auth/token.ts) both
// need a token when one is set, and the read-only token is enough. A
// browser asks for it with its Basic prompt (user name anything, the token
// as password) and then sends it with the page's own requests too.

import type { Router } from "../router.ts";
import { historyQuery, statusDocument } from "./data.ts";
import { buildStatusPage } from "./page.ts";
import type { StatusSources } from "./sources.ts";

/** Bodies smaller than this are sent as they are. */
const GZIP_MIN = 1024;

const COMMON_HEADERS = {
  "Cache-Control": "no-store",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  Vary: "Accept-Encoding",
};

export function addStatusRoutes(router: Router, sources: StatusSources): void {
  const page = buildStatusPage();
  const html = new TextEncoder().encode(page.html);
  const htmlGzip = Bun.gzipSync(html);
  const pageHeaders = { ...COMMON_HEADERS, "Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": page.csp, "X-Frame-Options": "DENY" };

  router.get("/", (req) =>
    acceptsGzip(req)
      ? new Response(htmlGzip, { headers: { ...pageHeaders, "Content-Encoding": "gzip" } })
      : new Response(html, { headers: pageHeaders }),
  );
  router.get("/status.json", (req) => {
    const doc = statusDocument(sources, historyQuery(new URL(req.url)));
    return body(req, JSON.stringify(doc), "application/json");
  });
}

function acceptsGzip(req: Request): boolean {
  return /\bgzip\b/i.test(req.headers.get("accept-encoding") ?? "");
}

function body(req: Request, text: string, contentType: string): Response {
  const bytes = new TextEncoder().encode(text);
  const headers = { ...COMMON_HEADERS, "Content-Type": contentType };
  if (bytes.length < GZIP_MIN || !acceptsGzip(req)) return new Response(bytes, { headers });
  return new Response(Bun.gzipSync(bytes), { headers: { ...headers, "Content-Encoding": "gzip" } });
}
