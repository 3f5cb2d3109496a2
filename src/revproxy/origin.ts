// Requests to the origins of --revproxy, with the reverse proxy's rules:
//
// - Hop-by-hop headers (Connection and what it names, Proxy-*, TE, ...)
//   are not forwarded either way; Via names this daemon, so a request that
//   comes back to it (a proxy environment variable pointing the daemon at
//   itself) is recognised and refused instead of looping.
// - A request made to fill the cache asks for the plain body
//   (Accept-Encoding: identity, no Range, no conditions): what is stored
//   must serve every later client. A passed-through request goes as the
//   client sent it, and its answer comes back byte for byte (fetch's
//   decompression is off).
// - --revproxy-timeout bounds the wait for the answer's headers and every
//   wait for the next body chunk; redirects are passed to the client.
//
// The origin's certificate is checked against the system's roots, and
// NODE_EXTRA_CA_CERTS / SSL_CERT_FILE for private CAs.

import { randomBytes } from "node:crypto";

/** This process's Via token: another gostash daemon in the chain has its own. */
export const VIA_TOKEN = `gostash-${randomBytes(4).toString("hex")}`;

const HOP_BY_HOP = ["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "host"];
const CONDITIONAL = ["range", "if-range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "accept-encoding"];

export class OriginError extends Error {
  override name = "OriginError";
  constructor(
    readonly kind: "timeout" | "network",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Did this request pass through this very daemon already? */
export function isLoop(req: Request): boolean {
  return (req.headers.get("via") ?? "").split(",").some((v) => v.trim().endsWith(VIA_TOKEN));
}

/** Headers minus the hop-by-hop ones (and those the Connection header names). */
export function endToEnd(headers: Headers): Headers {
  const out = new Headers(headers);
  const named = (headers.get("connection") ?? "").split(",").map((s) => s.trim().toLowerCase());
  for (const h of [...HOP_BY_HOP, ...named]) if (h) out.delete(h);
  return out;
}

export interface OriginRequest {
  url: URL;
  req: Request;
  /** The answer may be stored: ask for the whole, plain body. */
  forCache: boolean;
  timeoutMs: number;
}

/** The origin's answer, its body guarded by the stall timeout; throws OriginError. */
export async function fetchOrigin(o: OriginRequest): Promise<Response> {
  const headers = endToEnd(o.req.headers);
  if (o.forCache) {
    for (const h of CONDITIONAL) headers.delete(h);
    headers.set("accept-encoding", "identity");
  }
  headers.append("via", `1.1 ${VIA_TOKEN}`);
  const ctl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => ((timedOut = true), ctl.abort()), o.timeoutMs);
  const what = `${o.req.method} ${o.url.href}`;
  try {
    const hasBody = o.req.method !== "GET" && o.req.method !== "HEAD" && o.req.body !== null;
    const res = await fetch(o.url, {
      method: o.req.method,
      headers,
      body: hasBody ? o.req.body : undefined,
      redirect: "manual",
      decompress: false,
      signal: ctl.signal,
      ...(hasBody ? { duplex: "half" } : {}),
    } as RequestInit);
    clearTimeout(timer);
    return new Response(res.body ? stallGuard(res.body, o.timeoutMs, ctl, what) : null, { status: res.status, statusText: res.statusText, headers: endToEnd(res.headers) });
  } catch (err) {
    clearTimeout(timer);
    if (timedOut) throw new OriginError("timeout", `revproxy: ${what}: no answer within ${o.timeoutMs}ms`);
    throw new OriginError("network", `revproxy: ${what}: ${(err as Error)?.message ?? err}`, { cause: err });
  }
}

/** A body that errors when no chunk arrives for timeoutMs (and aborts the fetch). */
function stallGuard(body: ReadableStream<Uint8Array>, timeoutMs: number, ctl: AbortController, what: string): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      let stalled = false;
      timer = setTimeout(() => ((stalled = true), ctl.abort()), timeoutMs);
      try {
        const { done, value } = await reader.read();
        if (done) c.close();
        else c.enqueue(value);
      } catch (err) {
        c.error(new OriginError(stalled ? "timeout" : "network", stalled ? `revproxy: ${what}: body stalled for ${timeoutMs}ms` : `revproxy: ${what}: ${(err as Error)?.message ?? err}`));
      } finally {
        clearTimeout(timer);
      }
    },
    cancel(reason) {
      clearTimeout(timer);
      void reader.cancel(reason).catch(() => {});
      ctl.abort();
    },
  });
}
