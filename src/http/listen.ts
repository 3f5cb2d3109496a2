// Binds the daemon's `Request -> Response` handler to its --http address
// with Bun.serve: TLS when configured, the HTTP idle timeout, and a body
// cap that only backs up limitHttp's own (which answers 413 and counts it).

import type { HttpHandler } from "./router.ts";

export interface ListenOptions {
  hostname: string;
  port: number;
  /** Listen on this Unix socket instead of hostname:port (the servers behind the reverse proxy's front). */
  unix?: string;
  /** Close connections idle this long, in whole seconds (0: never). */
  idleTimeoutSec: number;
  /** limitHttp's body limit; Bun's own cap is set well above it. */
  maxBody: number;
  tls?: { cert: string; key: string } | null;
}

/** What serve needs of its HTTP listener: where it is, and how to stop it. */
export interface HttpListener {
  readonly hostname: string | undefined;
  readonly port: number | undefined;
  stop(closeActiveConnections?: boolean): void;
}

/** Throws an Error naming the address and the cause when it cannot listen. */
export function listenHttp(handle: HttpHandler, o: ListenOptions): HttpListener {
  const idle = o.idleTimeoutSec;
  try {
    return Bun.serve({
      ...(o.unix ? { unix: o.unix } : { hostname: o.hostname, port: o.port }),
      idleTimeout: idle,
      maxRequestBodySize: Math.max(o.maxBody * 4, 64 << 20),
      async fetch(req, server) {
        // The idle timeout is for connections, not for a request still being
        // handled (a module waiting on its upstream): off until the answer starts.
        if (idle) server.timeout(req, 0);
        try {
          return await handle(req);
        } finally {
          if (idle) server.timeout(req, idle);
        }
      },
      ...(o.tls ? { tls: o.tls } : {}),
      // Bun's types leave idleTimeout out for Unix sockets; it works there (measured).
    } as Parameters<typeof Bun.serve>[0]);
  } catch (err) {
    throw new Error(`http: cannot listen on ${o.unix ?? `${o.hostname}:${o.port}`}: ${(err as Error).message}`, { cause: err });
  }
}

/** The URL clients use, for the start-up line. */
export function listenerURL(l: HttpListener, tls: boolean): string {
  const host = l.hostname?.includes(":") ? `[${l.hostname}]` : l.hostname;
  return `${tls ? "https" : "http"}://${host}:${l.port}`;
}
