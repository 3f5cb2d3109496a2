// The reverse proxy behind its real --http front (listener.ts), in-process,
// against the local origin, with curl and raw TCP clients: the headers a
// hit goes out with (as Bun sends them), the idle timeout of the front,
// a client that half-closes after its request, the authority of an
// absolute-form request.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { TokenChecker } from "../../src/auth/token.ts";
import type { RevProxyConfig } from "../../src/config/revproxy.ts";
import { listenWithReverseProxy } from "../../src/revproxy/listener.ts";
import { openRevProxy } from "../../src/revproxy/open.ts";
import { Targets } from "../../src/revproxy/targets.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { tempDir } from "../helpers/env.ts";
import { curl } from "./helpers.ts";
import { bodyOf, startOrigin, type Origin } from "./origin.ts";

const tmp = tempDir("gostash-revproxy-front-");
let origin: Origin;
let seq = 0;

beforeAll(() => {
  origin = startOrigin();
});

afterAll(() => {
  origin?.stop();
  tmp.cleanup();
});

interface Front {
  url: string;
  port: number;
  metrics: Metrics;
  stop(): void;
}

const fronts: Front[] = [];
afterAll(() => {
  for (const f of fronts) f.stop();
});

/** The proxy for the origin's plain-HTTP port behind a front on 127.0.0.1, as serve runs it. */
function front(o: { idleSec?: number } = {}): Front {
  const metrics = new Metrics();
  const cfg: RevProxyConfig = {
    targets: Targets.parse(`localhost:${origin.httpPort}`, "--revproxy"),
    dir: join(tmp.path, `cache-${++seq}`, "revproxy"),
    maxEntryBytes: 64 << 20,
    memoryBytes: 8 << 20,
    timeoutMs: 10_000,
    tunnel: true,
    installCA: false,
    expiryMs: 86_400_000,
  };
  const rp = openRevProxy(cfg, { metrics, logger: createLogger(), client: null, readOnly: false, tokens: new TokenChecker({}) });
  const l = listenWithReverseProxy(() => new Response("direct\n"), rp.handler, {
    hostname: "127.0.0.1",
    port: 0,
    idleTimeoutSec: o.idleSec ?? 0,
    maxBody: 1 << 20,
    tls: null,
    identity: rp.identity,
    front: rp.front,
    limit: (h) => h,
  });
  const f = { url: `http://127.0.0.1:${l.port}`, port: l.port!, metrics, stop: () => l.stop(true) };
  fronts.push(f);
  return f;
}

/** Waits until no fill is under way: what was fetched is kept (or dropped) by then. */
async function settled(f: Front): Promise<void> {
  const end = Date.now() + 10_000;
  while (f.metrics.get("revproxy_fills_in_flight") > 0) {
    if (Date.now() > end) throw new Error("a fill did not settle within 10s");
    await Bun.sleep(5);
  }
}

const unique = (kind: string) => `/${kind}/f${++seq}-${Math.random().toString(36).slice(2)}`;

describe("a hit carries the headers the origin sent, and no made-up file name", () => {
  for (const kind of ["octets", "untyped", "untyped-short"]) {
    test(`${kind}: no file name in a Content-Disposition (curl -OJ saved hits under the entry's key), the origin's Content-Type or what a missing one means`, async () => {
      const f = front();
      const path = unique(kind);
      const first = await curl(f.url, `${origin.http}${path}`);
      expect(first.body.toString()).toBe(bodyOf(path));
      await settled(f);
      const hit = await curl(f.url, `${origin.http}${path}`);
      expect(hit.headers["x-cache"]).toStartWith("hit, ");
      expect(hit.body.toString()).toBe(bodyOf(path));
      for (const r of [first, hit]) {
        // "inline" is what no Content-Disposition means (RFC 6266); a missing type may be taken as octet-stream (RFC 9110).
        expect(r.headers["content-disposition"] ?? "inline").toBe("inline");
        expect(r.headers["content-type"] ?? "application/octet-stream").toBe("application/octet-stream");
      }
      expect(origin.count(path)).toBe(1);
    });
  }

  test("a typed hit keeps its Content-Length", async () => {
    const f = front();
    const path = unique("octets");
    await curl(f.url, `${origin.http}${path}`);
    await settled(f);
    const hit = await curl(f.url, `${origin.http}${path}`);
    expect(hit.headers["x-cache"]).toBe("hit, local");
    expect(hit.headers["content-length"]).toBe(String(bodyOf(path).length));
  });

  test("a large hit is whole, with its Content-Length and no file name", async () => {
    const f = front();
    const path = `/big/3/f${++seq}`;
    const first = await curl(f.url, `${origin.http}${path}`);
    await settled(f);
    const hit = await curl(f.url, `${origin.http}${path}`);
    expect(hit.headers["x-cache"]).toBe("hit, local");
    expect(hit.headers["content-disposition"] ?? "inline").toBe("inline");
    expect(hit.headers["content-length"]).toBe(String(3 << 20));
    expect(hit.body.length).toBe(3 << 20);
    expect(hit.body.equals(first.body)).toBe(true);
  });
});

/** A raw TCP client of the front: what it received, and whether the front closed it. */
async function rawClient(port: number): Promise<{ sock: Bun.Socket<undefined>; received: () => string; closed: Promise<void> }> {
  let text = "";
  let onClose!: () => void;
  const closed = new Promise<void>((r) => (onClose = r));
  const sock = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: { data: (_s, chunk) => void (text += Buffer.from(chunk).toString()), close: () => onClose(), end: () => onClose(), error: () => onClose() },
  });
  return { sock, received: () => text, closed };
}

/** Resolves true if `p` settles within ms (a generous bound: the test checks that it happens, not how fast). */
const within = (p: Promise<void>, ms: number) => Promise.race([p.then(() => true), Bun.sleep(ms).then(() => false)]);

describe("--http-idle-timeout on the front", () => {
  test("a connection that sends nothing is closed", async () => {
    const f = front({ idleSec: 1 });
    const c = await rawClient(f.port);
    expect(await within(c.closed, 15_000)).toBe(true);
    expect(f.metrics.get("revproxy_idle_closed")).toBe(1);
  }, 20_000);

  test("a connection that sends half a request line is closed", async () => {
    const f = front({ idleSec: 1 });
    const c = await rawClient(f.port);
    c.sock.write(`GET ${origin.http}/immutable/half`);
    expect(await within(c.closed, 15_000)).toBe(true);
    expect(origin.count("/immutable/half")).toBe(0);
  }, 20_000);

  test("an idle tunnel is closed", async () => {
    const f = front({ idleSec: 1 });
    const c = await rawClient(f.port);
    // 127.0.0.1 is not the listed name (localhost): tunnelled untouched.
    c.sock.write(`CONNECT 127.0.0.1:${origin.httpPort} HTTP/1.1\r\nHost: 127.0.0.1:${origin.httpPort}\r\n\r\n`);
    expect(await within(c.closed, 15_000)).toBe(true);
    expect(c.received()).toStartWith("HTTP/1.1 200 Connection established");
    expect(f.metrics.get("revproxy_idle_closed")).toBe(1);
  }, 20_000);
});

describe("a client that half-closes after its request", () => {
  test("gets its answer, proxied or the daemon's own (it got nothing: Bun's server drops a half-closed request, so the EOF is not passed on to it)", async () => {
    const f = front();
    for (const path of ["/immutable/half-closed", "/healthz"]) {
      const c = await rawClient(f.port);
      const target = path === "/healthz" ? path : `${origin.http}${path}`;
      c.sock.write(`GET ${target} HTTP/1.1\r\nHost: ${path === "/healthz" ? "gostash" : new URL(origin.http).host}\r\nConnection: close\r\n\r\n`);
      c.sock.shutdown();
      expect(await within(c.closed, 15_000)).toBe(true);
      expect(c.received()).toStartWith("HTTP/1.1 200");
    }
  }, 30_000);
});
