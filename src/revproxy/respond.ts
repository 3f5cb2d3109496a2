// The reverse proxy's answers. Every one carries X-Cache (how it was
// served, policy.ts X_CACHE) and, when a cache entry is involved,
// X-Cache-Id (the first 12 hex digits of its key, as go-cache-plugin).

import type { LocalHit } from "./local-entries.ts";
import type { MemoryEntry } from "./memory-cache.ts";
import { X_CACHE } from "./policy.ts";

type XCache = (typeof X_CACHE)[keyof typeof X_CACHE];

function cacheHeaders(stored: [string, string][], xCache: XCache, key: string, length: number | null): Headers {
  const h = new Headers(stored);
  if (length !== null) h.set("content-length", String(length));
  h.set("x-cache", xCache);
  h.set("x-cache-id", key.slice(0, 12));
  return h;
}

/** 304 when the client already has this version (If-None-Match against the stored ETag). */
function notModified(req: Request, stored: [string, string][], xCache: XCache, key: string): Response | null {
  const inm = req.headers.get("if-none-match");
  const etag = stored.find(([k]) => k === "etag")?.[1];
  if (!inm || !etag) return null;
  const wanted = inm.split(",").map((t) => t.trim().replace(/^W\//, ""));
  if (!wanted.includes("*") && !wanted.includes(etag.replace(/^W\//, ""))) return null;
  return new Response(null, { status: 304, headers: cacheHeaders(stored.filter(([k]) => k !== "content-length"), xCache, key, null) });
}

/**
 * A verified local entry: the file's body range, sent from disk (sendfile,
 * with its Content-Length). Bun names a file body in a Content-Disposition
 * of its own (filename="<the entry's key>": `curl -OJ` saved under it)
 * unless the response has one; an origin that sent none gets "inline",
 * which is what no header means (RFC 6266). A missing Content-Type
 * becomes application/octet-stream, what RFC 9110 lets a recipient assume.
 */
export function fromLocal(req: Request, hit: LocalHit, xCache: XCache, key: string): Response {
  const nm = notModified(req, hit.meta.headers, xCache, key);
  if (nm) return nm;
  const body = Bun.file(hit.path).slice(hit.bodyStart, hit.bodyStart + hit.head.size);
  const headers = cacheHeaders(hit.meta.headers, xCache, key, hit.head.size);
  if (!headers.has("content-disposition")) headers.set("content-disposition", "inline");
  return new Response(body, { status: 200, headers });
}

export function fromMemory(req: Request, e: MemoryEntry, key: string): Response {
  return notModified(req, e.headers, X_CACHE.memory, key) ?? new Response(e.body, { status: 200, headers: cacheHeaders(e.headers, X_CACHE.memory, key, e.body.length) });
}

/** A body being downloaded, streamed as it arrives. */
export function fromSpool(body: ReadableStream<Uint8Array>, stored: [string, string][], length: number | null, xCache: XCache, key: string): Response {
  return new Response(body, { status: 200, headers: cacheHeaders(stored, xCache, key, length) });
}

/** The origin's own answer, marked as not cached. */
export function passedThrough(res: Response): Response {
  const h = new Headers(res.headers);
  h.set("x-cache", X_CACHE.uncached);
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers: h });
}

/** An answer of the proxy itself (a refusal, an origin that failed). */
export function proxyError(status: number, message: string, xCache: XCache, extra: Record<string, string> = {}): Response {
  return new Response(`${message}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8", "x-cache": xCache, ...extra } });
}
