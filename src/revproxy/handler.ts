// The reverse proxy as a `Request -> Response` function: a request that
// names a listed host (absolute-form `GET http://host/...`, or any request
// inside a CONNECT tunnel this daemon terminated) is answered from the
// cache, or fetched and cached. In order:
//
//   1. the token (--token/--read-token), from Proxy-Authorization, when the
//      daemon requires one (407 otherwise). Inside a terminated CONNECT it
//      was checked on the CONNECT. Either token may use the proxy: what it
//      caches always comes from the origin.
//   2. the host must be listed (502 otherwise, as go-cache-plugin), and
//      the request must not have looped back through this daemon (508).
//   3. a request the cache may not answer (policy.ts) passes through.
//   4. memory, then the local disk (verified), then a fill shared by all
//      concurrent requests for the URL (fill.ts: bucket, then origin). An
//      entry, or a fill's answer, that varies (Vary) on request headers
//      whose values differ from this request's is not used (vary.ts):
//      a stored one is a miss, a fill's answer is fetched on its own.

import { tokenFromRequest, type TokenChecker } from "../auth/token.ts";
import type { Metrics } from "../util/metrics.ts";
import type { FillOutcome, Fills } from "./fill.ts";
import { canonicalURL, entryKey } from "./keys.ts";
import type { LocalEntries } from "./local-entries.ts";
import type { MemoryCache } from "./memory-cache.ts";
import { fetchOrigin, isLoop, OriginError } from "./origin.ts";
import { requestCacheable, X_CACHE } from "./policy.ts";
import { fromLocal, fromMemory, fromSpool, passedThrough, proxyError } from "./respond.ts";
import type { Scheme, Targets } from "./targets.ts";
import { varyMatches } from "./vary.ts";

export interface ProxyDeps {
  targets: Targets;
  local: LocalEntries;
  memory: MemoryCache;
  fills: Fills;
  tokens: TokenChecker;
  metrics: Metrics;
  timeoutMs: number;
  /** --debug bit 4: one line per request. */
  requestLine: ((line: string) => void) | null;
}

export interface ProxyRequestContext {
  scheme: Scheme;
  /** The token was checked already (on the CONNECT that opened this tunnel). */
  authenticated: boolean;
}

export type ProxyHandler = (req: Request, ctx: ProxyRequestContext) => Promise<Response>;

const DEFAULT_PORT: Record<Scheme, number> = { http: 80, https: 443 };

/** The token of a proxy request: Proxy-Authorization, read like Authorization (Basic user:TOKEN, or Bearer). */
export function proxyToken(req: Request): string | null {
  const h = req.headers.get("proxy-authorization");
  return h ? tokenFromRequest(new Request("http://proxy/", { headers: { authorization: h } })) : null;
}

export function createProxyHandler(d: ProxyDeps): ProxyHandler {
  return async (req, ctx) => {
    const t0 = performance.now();
    d.metrics.inc("revproxy_requests");
    const res = await answer(d, req, ctx);
    d.metrics.observe("revproxy_seconds", (performance.now() - t0) / 1000);
    d.requestLine?.(`${req.method} ${canonicalURL(req, ctx.scheme).href} ${res.status} ${res.headers.get("x-cache")} ${res.headers.get("content-length") ?? "-"} ${(performance.now() - t0).toFixed(1)}ms`);
    return res;
  };
}

async function answer(d: ProxyDeps, req: Request, ctx: ProxyRequestContext): Promise<Response> {
  if (!ctx.authenticated && d.tokens.required && d.tokens.check(proxyToken(req)) === "none") {
    d.metrics.inc("revproxy_auth_refused");
    return proxyError(407, "proxy authentication required: a valid token (HTTP_PROXY=http://user:TOKEN@host:port)", X_CACHE.refused, {
      "proxy-authenticate": 'Basic realm="gostash", charset="UTF-8"',
    });
  }
  const url = canonicalURL(req, ctx.scheme);
  const port = url.port ? Number(url.port) : DEFAULT_PORT[ctx.scheme];
  if (!d.targets.matches(url.hostname, port, ctx.scheme)) {
    d.metrics.inc("revproxy_refused");
    return proxyError(502, `${url.host} is not a host this proxy serves (--revproxy=${d.targets})`, X_CACHE.refused);
  }
  if (isLoop(req)) {
    d.metrics.inc("revproxy_loops");
    return proxyError(508, "request looped back to this gostash daemon (does its own environment point HTTP_PROXY/HTTPS_PROXY at itself?)", X_CACHE.refused);
  }
  if (!requestCacheable(req)) return passThrough(d, req, url);
  return cached(d, req, url);
}

async function cached(d: ProxyDeps, req: Request, url: URL, retried = false): Promise<Response> {
  const key = entryKey(url.href);
  const mem = d.memory.get(key);
  if (mem && varyMatches(mem.headers, mem.varying, req)) {
    d.metrics.inc("revproxy_hits_memory");
    return fromMemory(req, mem, key);
  }
  const hit = await d.local.lookup(key);
  if (hit && varyMatches(hit.meta.headers, hit.meta.varying, req)) {
    d.metrics.inc("revproxy_hits_local");
    return fromLocal(req, hit, X_CACHE.local, key);
  }
  const { outcome, leader } = d.fills.join(key, url, req);
  if (!leader) d.metrics.inc("revproxy_shared");
  const o = await outcome;
  // A joiner's request may differ from the leader's in the headers the answer varies on.
  if (!leader && !varyMatches(...storedOf(o), req)) return passThrough(d, req, url);
  switch (o.kind) {
    case "memory":
      d.metrics.inc("revproxy_hits_memory");
      return fromMemory(req, o.entry, key);
    case "local":
      d.metrics.inc("revproxy_hits_local");
      return fromLocal(req, o.hit, X_CACHE.local, key);
    case "remote":
      d.metrics.inc("revproxy_hits_remote");
      return fromLocal(req, o.hit, X_CACHE.remote, key);
    case "spool": {
      const body = o.spool.attach();
      if (!body) {
        if (o.spool.state === "failed") return proxyError(502, `revproxy: ${o.spool.error?.message ?? "download failed"}`, X_CACHE.error);
        // Too late to join (the fill is over): it is on disk or in memory now, or it was not kept.
        return retried ? passThrough(d, req, url) : cached(d, req, url, true);
      }
      const xCache = !leader ? X_CACHE.shared : o.storage === "memory" ? X_CACHE.fetchedMemory : X_CACHE.fetchedDisk;
      return fromSpool(body, o.headers, o.spool.expected, xCache, key);
    }
    case "direct": {
      const res = o.take();
      if (res) d.metrics.inc("revproxy_not_cached");
      return res ? passedThrough(res) : passThrough(d, req, url);
    }
    case "failed":
      return proxyError(o.status, o.message, X_CACHE.error);
  }
}

/** The stored headers and Vary'd request values of an outcome that carries an answer. */
function storedOf(o: FillOutcome): [[string, string][], [string, string][] | undefined] {
  switch (o.kind) {
    case "memory":
      return [o.entry.headers, o.entry.varying];
    case "local":
    case "remote":
      return [o.hit.meta.headers, o.hit.meta.varying];
    case "spool":
      return [o.headers, o.varying];
    default:
      return [[], undefined];
  }
}

async function passThrough(d: ProxyDeps, req: Request, url: URL): Promise<Response> {
  d.metrics.inc("revproxy_passed_through");
  try {
    return passedThrough(await fetchOrigin({ url, req, forCache: false, timeoutMs: d.timeoutMs }));
  } catch (err) {
    d.metrics.inc("revproxy_fetch_errors");
    const e = err as OriginError;
    return proxyError(e.kind === "timeout" ? 504 : 502, e.message, X_CACHE.error);
  }
}
