// The --http listener when --revproxy is on: the front on the --http port
// (front.ts) and three Bun.serve servers behind it, each on a Unix socket
// in a fresh private directory (mkdtemp: mode 0700, removed at stop):
//
//   direct.sock   the daemon's own endpoints (/metrics, /mod, ...), exactly
//                 what --http serves without --revproxy
//   proxy.sock    absolute-form proxy requests (http://host/...)
//   tls.sock      TLS with the certificate for the listed hosts: the inner
//                 end of every CONNECT to a listed host. Its requests are
//                 https:// requests whose token was checked on the CONNECT.
//
// Without --revproxy none of this runs: --http is Bun.serve alone
// (src/http/listen.ts), with no front and no extra copy.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listenHttp, type HttpListener, type ListenOptions } from "../http/listen.ts";
import type { HttpHandler } from "../http/router.ts";
import { frontHandlers, type FrontConnection, type FrontDeps } from "./front.ts";
import type { ProxyHandler } from "./handler.ts";

export interface ReverseProxyListen extends ListenOptions {
  /** The PEM certificate and key presented for the listed hosts. */
  identity: { cert: string; key: string };
  front: Omit<FrontDeps, "inner" | "idleSec">;
  /** Applies the HTTP limits (--max-http-*) to the proxy's handler. */
  limit: (h: HttpHandler) => HttpHandler;
}

export function listenWithReverseProxy(direct: HttpHandler, proxy: ProxyHandler, o: ReverseProxyListen): HttpListener {
  const dir = mkdtempSync(join(tmpdir(), "gostash-http-"));
  const inner = { direct: join(dir, "direct.sock"), proxy: join(dir, "proxy.sock"), tls: join(dir, "tls.sock") };
  const servers: HttpListener[] = [];
  const stopInner = () => {
    for (const s of servers) s.stop(true);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // Only the TLS server's requests are https, and only they came through a checked CONNECT.
    const proxyFetch = o.limit((req) => {
      const tls = req.url.startsWith("https:");
      return proxy(req, { scheme: tls ? "https" : "http", authenticated: tls });
    });
    servers.push(listenHttp(direct, { ...o, tls: null, unix: inner.direct }));
    servers.push(listenHttp(proxyFetch, { ...o, tls: null, unix: inner.proxy }));
    servers.push(listenHttp(proxyFetch, { ...o, tls: o.identity, unix: inner.tls }));
    const front = Bun.listen<FrontConnection>({
      hostname: o.hostname,
      port: o.port,
      // A client done sending (shutdown after its request) still reads its answer: its EOF goes on to the peer (front.ts).
      allowHalfOpen: true,
      socket: frontHandlers({ ...o.front, inner, idleSec: o.idleTimeoutSec }),
      ...(o.tls ? { tls: o.tls } : {}),
    });
    return {
      hostname: front.hostname,
      port: front.port,
      stop(closeActive) {
        front.stop(closeActive);
        stopInner();
      },
    };
  } catch (err) {
    stopInner();
    if ((err as Error).message.startsWith("http:")) throw err;
    throw new Error(`http: cannot listen on ${o.hostname}:${o.port}: ${(err as Error).message}`, { cause: err });
  }
}
