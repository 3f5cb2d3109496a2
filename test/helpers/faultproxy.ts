// A real HTTP proxy on a loopback port, in front of an S3 server (or any
// HTTP server), with faults that can be switched at any time:
//
//   const proxy = await startFaultProxy(s3.endpoint);
//   proxy.set({ latencyMs: 20 });             // every request waits 20 ms first
//   proxy.set({ down: true });                // port closed: connection refused
//   proxy.set({ status500: true });           // every request answers 500
//   proxy.set({ cutBody: true });             // GET bodies stop halfway, connection dropped
//   proxy.set({ corruptBody: true });         // GET bodies arrive with bytes flipped
//   proxy.set({ hang: true });                // requests are read but never answered
//   proxy.reset();                            // no faults
//   proxy.requests / proxy.counts.GET ...     // what went through (faulty or not)
//   await proxy.stop();
//
// Faults can be limited to one method (`only: "GET"` or "PUT") and to paths
// matching a pattern (`onlyPath: /toolchains\//`). Requests are
// forwarded with their Host header intact, so S3 signatures (which cover the
// host the client used) still verify at the server. `endpoint` is the URL to
// give the client.
import { freePort } from "./s3server.ts";

export interface Faults {
  /** Added before every request is forwarded (ms). */
  latencyMs: number;
  /** Not listening at all: clients get connection refused. */
  down: boolean;
  /** Answer 500 InternalError without forwarding. */
  status500: boolean;
  /** Forward, then send only half of a response body and drop the connection. */
  cutBody: boolean;
  /** Forward, then send half of a GET body and nothing more (the connection stays open until the fault is lifted). */
  stallBody: boolean;
  /** Forward, then flip bits in the response body (length unchanged). */
  corruptBody: boolean;
  /** Accept the request and never answer it. */
  hang: boolean;
  /** Apply the faults above only to this method (others pass cleanly). */
  only: string | null;
  /** Apply them only to requests whose path matches (others pass cleanly). */
  onlyPath: RegExp | null;
}

const NONE: Faults = { latencyMs: 0, down: false, status500: false, cutBody: false, stallBody: false, corruptBody: false, hang: false, only: null, onlyPath: null };

export interface FaultProxy {
  endpoint: string;
  port: number;
  readonly faults: Readonly<Faults>;
  /** Requests received (including ones that got a fault), total and by method. */
  readonly requests: number;
  readonly counts: Record<string, number>;
  /** Requests answered with an injected fault. */
  readonly faulted: number;
  set(f: Partial<Faults>): void;
  reset(): void;
  resetCounts(): void;
  stop(): Promise<void>;
}

const HOP = new Set(["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"]);

export async function startFaultProxy(upstream: string, initial: Partial<Faults> = {}): Promise<FaultProxy> {
  const up = new URL(upstream);
  let faults: Faults = { ...NONE, ...initial };
  let requests = 0;
  let faulted = 0;
  const counts: Record<string, number> = {};
  const port = freePort();
  const hanging = new Set<() => void>();

  const applies = (method: string, path: string) => (faults.only === null || faults.only === method) && (faults.onlyPath === null || faults.onlyPath.test(path));

  async function handle(req: Request): Promise<Response> {
    requests++;
    counts[req.method] = (counts[req.method] ?? 0) + 1;
    const f = applies(req.method, new URL(req.url).pathname) ? faults : NONE;
    if (f.latencyMs > 0) await Bun.sleep(f.latencyMs);
    if (f.hang) {
      faulted++;
      // Resolved only when the proxy stops; the client must give up first.
      await new Promise<void>((r) => hanging.add(r));
      return new Response(null, { status: 503 });
    }
    if (f.status500) {
      faulted++;
      await req.arrayBuffer().catch(() => {});
      return new Response(
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected fault</Message></Error>',
        { status: 500, headers: { "content-type": "application/xml" } },
      );
    }
    const u = new URL(req.url);
    const target = `${up.protocol}//${up.host}${u.pathname}${u.search}`;
    const headers = new Headers();
    req.headers.forEach((v, k) => {
      if (!HOP.has(k)) headers.set(k, v);
    });
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const res = await fetch(target, {
      method: req.method,
      headers,
      body: hasBody ? await req.arrayBuffer() : undefined,
      redirect: "manual",
      decompress: false,
    } as RequestInit);
    const outHeaders = new Headers();
    res.headers.forEach((v, k) => {
      if (!HOP.has(k)) outHeaders.set(k, v);
    });
    const isBody = req.method === "GET" && res.status < 300;
    if (isBody && f.cutBody) {
      faulted++;
      const body = new Uint8Array(await res.arrayBuffer());
      const half = body.subarray(0, Math.floor(body.length / 2));
      // Send half, then fail the stream: the server drops the connection
      // and the client sees a premature end. (Bun logs the stream error
      // "fault proxy: injected cut" on stderr; that is expected.)
      const stream = new ReadableStream<Uint8Array>({
        async pull(ctl) {
          if (half.length) ctl.enqueue(half);
          await Bun.sleep(20);
          ctl.error(new Error("fault proxy: injected cut"));
        },
      });
      return new Response(stream, { status: res.status, headers: outHeaders });
    }
    if (isBody && f.stallBody) {
      faulted++;
      const body = new Uint8Array(await res.arrayBuffer());
      let sent = false;
      const stream = new ReadableStream<Uint8Array>({
        async pull(ctl) {
          if (!sent) {
            sent = true;
            return ctl.enqueue(body.subarray(0, Math.floor(body.length / 2)));
          }
          await new Promise<void>((r) => hanging.add(r)); // silence, until the fault is lifted
          ctl.error(new Error("fault proxy: stalled body ended"));
        },
      });
      return new Response(stream, { status: res.status, headers: outHeaders });
    }
    if (isBody && f.corruptBody) {
      const body = new Uint8Array(await res.arrayBuffer());
      if (body.length) {
        faulted++;
        for (let i = 0; i < body.length; i += 97) body[i]! ^= 0x5a;
      }
      return new Response(body, { status: res.status, headers: outHeaders });
    }
    // Buffered, so the client gets a Content-Length as the server sent it
    // (a streamed Response would go out chunked; some S3 clients, e.g.
    // aws-sdk-go-v2 users, expect the length). HEAD keeps the header as is.
    if (req.method === "HEAD" || res.status === 204 || res.status === 304) {
      return new Response(null, { status: res.status, headers: outHeaders });
    }
    return new Response(await res.arrayBuffer(), { status: res.status, headers: outHeaders });
  }

  let server: ReturnType<typeof Bun.serve> | null = null;
  const listen = () => {
    server = Bun.serve({
      hostname: "127.0.0.1",
      port,
      idleTimeout: 0,
      fetch: handle,
      error: () => new Response("fault proxy: upstream error", { status: 502 }),
    });
  };
  const close = () => {
    server?.stop(true);
    server = null;
  };
  const apply = () => {
    if (faults.down && server) close();
    else if (!faults.down && !server) listen();
  };
  apply();

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    get faults() {
      return faults;
    },
    get requests() {
      return requests;
    },
    get counts() {
      return counts;
    },
    get faulted() {
      return faulted;
    },
    set(f) {
      faults = { ...faults, ...f };
      if (!faults.hang && !faults.stallBody) for (const wake of hanging) wake();
      apply();
    },
    reset() {
      faults = { ...NONE };
      for (const wake of hanging) wake();
      hanging.clear();
      apply();
    },
    resetCounts() {
      requests = 0;
      faulted = 0;
      for (const k of Object.keys(counts)) delete counts[k];
    },
    async stop() {
      for (const wake of hanging) wake();
      hanging.clear();
      close();
    },
  };
}
