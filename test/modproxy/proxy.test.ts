// The module proxy over real HTTP (in-process Bun.serve around the handler)
// against a local upstream: fall-through, stalls, tampering, single fetch
// under 100 concurrent requests, traversal attempts over raw sockets,
// Range/ETag/HEAD, stale serving, not-found caching, file:// upstreams.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createModProxy, type ModProxyOptions } from "../../src/modproxy/serve/proxy.ts";
import type { Metrics } from "../../src/util/metrics.ts";
import { tempDir } from "../helpers/env.ts";
import { goZip, proxyOptions, startUpstream, writeModule, writeTestModules, zipEntries, type Upstream } from "./helpers.ts";

interface Proxy {
  url: string;
  port: number;
  dir: string;
  metrics: Metrics;
  stop(): void;
}

function startProxy(dir: string, upstream: string, over: Partial<ModProxyOptions> = {}): Proxy {
  const opts = proxyOptions(dir, upstream, over);
  const metrics = opts.metrics;
  const p = createModProxy(opts);
  const srv = Bun.serve({ hostname: "127.0.0.1", port: 0, idleTimeout: 0, fetch: p.fetch });
  return { url: `http://127.0.0.1:${srv.port}/mod`, port: srv.port!, dir, metrics, stop: () => srv.stop(true) };
}

/** Every file under dir, relative. */
function walk(dir: string, base = dir): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p, base));
    else out.push(p.slice(base.length + 1));
  }
  return out.sort();
}

/** Sends one raw HTTP/1.1 request line (no client-side normalisation) and returns the status. */
async function rawStatus(port: number, target: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`no answer for ${target}`)), 10_000);
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(s) {
          s.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
        },
        data(s, d) {
          buf += d.toString("latin1");
          const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf);
          if (m) {
            clearTimeout(timer);
            resolve(Number(m[1]));
            s.end();
          }
        },
        close() {
          clearTimeout(timer);
          if (!/^HTTP/.test(buf)) reject(new Error(`connection closed without an answer for ${target}`));
        },
        error(_s, e) {
          reject(e);
        },
      },
    }).catch(reject);
  });
}

let root: ReturnType<typeof tempDir>;
let upDir: string;
let up: Upstream;

beforeAll(() => {
  root = tempDir("gostash-modproxy-");
  upDir = join(root.path, "up");
  writeTestModules(upDir);
  up = startUpstream(upDir);
});

afterAll(() => {
  up.stop();
  root.cleanup();
});

let n = 0;
function freshDir(): string {
  return join(root.path, `cache${++n}`);
}

describe("module proxy over HTTP", () => {
  test("serves the protocol: list, info, mod, zip, @latest, case-encoded paths, HEAD, ETag, Range", async () => {
    up.hits.clear();
    const p = startProxy(freshDir(), up.url);
    try {
      const list = await fetch(`${p.url}/example.com/lib/@v/list`);
      expect(list.status).toBe(200);
      expect((await list.text()).split("\n").filter(Boolean).sort()).toEqual(["v1.0.0", "v1.1.0"]);
      expect(list.headers.get("cache-control")).toBe("public, max-age=60");

      const info = await fetch(`${p.url}/example.com/!upper/!case/@v/v1.0.0.info`);
      expect(info.status).toBe(200);
      expect(((await info.json()) as { Version: string }).Version).toBe("v1.0.0");
      expect(info.headers.get("content-type")).toBe("application/json");
      expect(info.headers.get("cache-control")).toContain("immutable");

      const mod = await fetch(`${p.url}/example.com/!upper/!case/@v/v1.0.0.mod`);
      expect(await mod.text()).toContain("module example.com/Upper/Case");

      const want = readFileSync(join(upDir, "example.com/!upper/!case/@v/v1.0.0.zip"));
      const zip1 = await fetch(`${p.url}/example.com/!upper/!case/@v/v1.0.0.zip`);
      expect(zip1.status).toBe(200);
      expect(Buffer.from(await zip1.arrayBuffer()).equals(want)).toBe(true);
      // Stored in the GOPROXY layout.
      expect(readFileSync(join(p.dir, "example.com/!upper/!case/@v/v1.0.0.zip")).equals(want)).toBe(true);

      const zip2 = await fetch(`${p.url}/example.com/!upper/!case/@v/v1.0.0.zip`);
      expect(Buffer.from(await zip2.arrayBuffer()).equals(want)).toBe(true);
      const etag = zip2.headers.get("etag")!;
      expect(etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
      expect(zip2.headers.get("content-length")).toBe(String(want.length));
      expect(zip2.headers.get("content-type")).toBe("application/zip");

      const cond = await fetch(`${p.url}/example.com/!upper/!case/@v/v1.0.0.zip`, { headers: { "If-None-Match": etag } });
      expect(cond.status).toBe(304);

      const range = await fetch(`${p.url}/example.com/!upper/!case/@v/v1.0.0.zip`, { headers: { Range: "bytes=10-19" } });
      expect(range.status).toBe(206);
      expect(range.headers.get("content-range")).toBe(`bytes 10-19/${want.length}`);
      expect(Buffer.from(await range.arrayBuffer()).equals(want.subarray(10, 20))).toBe(true);
      const bad = await fetch(`${p.url}/example.com/!upper/!case/@v/v1.0.0.zip`, { headers: { Range: `bytes=${want.length + 5}-` } });
      expect(bad.status).toBe(416);

      const head = await fetch(`${p.url}/example.com/!upper/!case/@v/v1.0.0.zip`, { method: "HEAD" });
      expect(head.status).toBe(200);
      expect(head.headers.get("content-length")).toBe(String(want.length));

      // HEAD of an uncached file fetches and stores it.
      const headMiss = await fetch(`${p.url}/example.com/dep/@v/v1.0.0.zip`, { method: "HEAD" });
      expect(headMiss.status).toBe(200);
      expect(existsSync(join(p.dir, "example.com/dep/@v/v1.0.0.zip"))).toBe(true);

      // Only one upstream fetch per file.
      expect(up.count("/example.com/!upper/!case/@v/v1.0.0.zip")).toBe(1);
      expect(up.count("/example.com/!upper/!case/@v/v1.0.0.info")).toBe(1);

      const post = await fetch(`${p.url}/example.com/lib/@v/list`, { method: "POST" });
      expect(post.status).toBe(405);
      expect(p.metrics.get("modproxy_hits")).toBeGreaterThan(0);
      expect(p.metrics.histograms.get("modproxy_upstream_seconds")?.count).toBeGreaterThan(0);
    } finally {
      p.stop();
    }
  });

  test("@latest and version queries are answered and cached briefly", async () => {
    const dir = join(root.path, "latest-up");
    writeModule(dir, { path: "example.com/q", version: "v1.2.0", files: { "q.go": "package q\n" } });
    writeFileSync(join(dir, "example.com/q/@latest"), '{"Version":"v1.2.0"}\n');
    writeFileSync(join(dir, "example.com/q/@v/master.info"), '{"Version":"v1.2.0"}\n');
    const u = startUpstream(dir);
    const p = startProxy(freshDir(), u.url);
    try {
      for (let i = 0; i < 2; i++) {
        const l = await fetch(`${p.url}/example.com/q/@latest`);
        expect(((await l.json()) as { Version: string }).Version).toBe("v1.2.0");
        const q = await fetch(`${p.url}/example.com/q/@v/master.info`);
        expect(((await q.json()) as { Version: string }).Version).toBe("v1.2.0");
      }
      expect(u.count("/@latest")).toBe(1);
      expect(u.count("/master.info")).toBe(1);
      // Queries are not written into the GOPROXY layout.
      expect(existsSync(join(p.dir, "example.com/q/@v/master.info"))).toBe(false);
      expect(existsSync(join(p.dir, "example.com/q/@latest"))).toBe(true);
    } finally {
      p.stop();
      u.stop();
    }
  });

  test("404 and 410 fall through ',' lists; errors fall through '|' lists only", async () => {
    const other = join(root.path, "other-up");
    writeModule(other, { path: "example.com/only2", version: "v1.0.0", files: { "a.go": "package only2\n" } });
    const u1 = startUpstream(join(root.path, "empty-up"));
    const u2 = startUpstream(other);
    u1.status.set("/example.com/only2/@v/v1.0.0.mod", 410);
    const p = startProxy(freshDir(), `${u1.url},${u2.url}`);
    try {
      // u1 answers 404 for the .info and 410 for the .mod: both fall through.
      expect((await fetch(`${p.url}/example.com/only2/@v/v1.0.0.info`)).status).toBe(200);
      expect((await fetch(`${p.url}/example.com/only2/@v/v1.0.0.mod`)).status).toBe(200);
      expect(u1.count("/example.com/only2/@v/v1.0.0.mod")).toBe(1);
      expect(u2.count("/example.com/only2/@v/v1.0.0.mod")).toBe(1);
      // Nobody has it: the last 404 is passed on as plain text, and remembered.
      const nf = await fetch(`${p.url}/example.com/nothere/@v/v1.0.0.info`);
      expect(nf.status).toBe(404);
      expect(nf.headers.get("content-type")).toContain("text/plain");
      expect((await fetch(`${p.url}/example.com/nothere/@v/v1.0.0.info`)).status).toBe(404);
      expect(u2.count("/example.com/nothere/@v/v1.0.0.info")).toBe(1);

      // A 500 stops a ',' list...
      u1.status.set("/example.com/only2/@v/list", 500);
      const stop = await fetch(`${p.url}/example.com/only2/@v/list`);
      expect(stop.status).toBe(502);
      expect(u2.count("/example.com/only2/@v/list")).toBe(0);
    } finally {
      p.stop();
    }
    // ...and falls through a '|' list.
    const p2 = startProxy(freshDir(), `${u1.url}|${u2.url}`);
    try {
      const ok = await fetch(`${p2.url}/example.com/only2/@v/list`);
      expect(ok.status).toBe(200);
      expect(await ok.text()).toBe("v1.0.0\n");
    } finally {
      p2.stop();
      u1.stop();
      u2.stop();
    }
  });

  test("429 and 5xx are retried", async () => {
    const u = startUpstream(upDir);
    u.status.set("/example.com/dep/@v/v1.0.0.info", 503);
    const p = startProxy(freshDir(), u.url, { retries: 2 });
    try {
      const r = await fetch(`${p.url}/example.com/dep/@v/v1.0.0.info`);
      expect(r.status).toBe(502);
      expect(u.count("/example.com/dep/@v/v1.0.0.info")).toBe(3);
    } finally {
      p.stop();
      u.stop();
    }
  });

  test("a stalled upstream fails with a timeout instead of hanging", async () => {
    const u = startUpstream(upDir);
    u.stall.add("/example.com/lib/@v/v1.0.0.zip");
    u.stall.add("/example.com/lib/@v/v1.0.0.info");
    const p = startProxy(freshDir(), u.url, { timeoutMs: 400 });
    try {
      const info = await fetch(`${p.url}/example.com/lib/@v/v1.0.0.info`);
      expect(info.status).toBe(504);
      expect(await info.text()).toContain("no answer");
      const zip = await fetch(`${p.url}/example.com/lib/@v/v1.0.0.zip`);
      expect(zip.status).toBe(504);
      expect(walk(p.dir).filter((f) => f.startsWith("example.com"))).toEqual([]);
    } finally {
      p.stop();
      u.stop();
    }
  });

  test("a zip that stalls in the middle of its body errors the client and is not stored", async () => {
    const big = goZip("example.com/slow", "v1.0.0", { "go.mod": "module example.com/slow\n", "big.txt": "x".repeat(300_000) });
    let cut = 0;
    const srv = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0,
      fetch() {
        cut++;
        return new Response(
          new ReadableStream({
            async pull(c) {
              c.enqueue(big.subarray(0, 1000));
              await Bun.sleep(60_000);
            },
          }),
          { headers: { "Content-Length": String(big.length) } },
        );
      },
    });
    const p = startProxy(freshDir(), `http://127.0.0.1:${srv.port}`, { timeoutMs: 400 });
    try {
      let failed = false;
      try {
        const r = await fetch(`${p.url}/example.com/slow/@v/v1.0.0.zip`);
        if (r.status === 200) await r.arrayBuffer();
        else failed = true;
      } catch {
        failed = true;
      }
      expect(failed).toBe(true);
      expect(walk(p.dir).filter((f) => f.startsWith("example.com"))).toEqual([]);
    } finally {
      p.stop();
      srv.stop(true);
    }
  });

  test("a tampered zip is refused and not stored", async () => {
    const u = startUpstream(upDir);
    // Entries outside module@version/.
    u.replace.set("/example.com/lib/@v/v1.0.0.zip", zipEntries({ "example.com/lib@v1.0.0/go.mod": "module example.com/lib\n", "example.com/evil@v9.9.9/x.go": "package x\n" }));
    // Not a zip at all.
    u.replace.set("/example.com/dep/@v/v1.0.0.zip", new TextEncoder().encode("<html>captive portal</html>"));
    // A go.mod for another module, an .info for another version.
    u.replace.set("/example.com/lib/@v/v1.0.0.mod", new TextEncoder().encode("module example.com/notlib\n"));
    u.replace.set("/example.com/lib/@v/v1.0.0.info", new TextEncoder().encode('{"Version":"v1.1.0"}'));
    const p = startProxy(freshDir(), u.url);
    try {
      for (const path of ["example.com/lib/@v/v1.0.0.zip", "example.com/dep/@v/v1.0.0.zip"]) {
        // The body streams while it downloads; it must not end cleanly (a
        // 502, a reset before the headers, or a body cut before its end).
        let clean = false;
        try {
          const r = await fetch(`${p.url}/${path}`);
          clean = r.status === 200;
          if (clean) await r.arrayBuffer();
        } catch {
          clean = false;
        }
        expect(clean, path).toBe(false);
      }
      expect((await fetch(`${p.url}/example.com/lib/@v/v1.0.0.mod`)).status).toBe(502);
      expect((await fetch(`${p.url}/example.com/lib/@v/v1.0.0.info`)).status).toBe(502);
      expect(walk(p.dir).filter((f) => f.startsWith("example.com"))).toEqual([]);
      expect(p.metrics.get("modproxy_refused")).toBe(4);
    } finally {
      p.stop();
      u.stop();
    }
  });

  test("100 concurrent requests for one uncached zip: one upstream fetch, identical bodies", async () => {
    const dir = join(root.path, "big-up");
    const payload = Array.from({ length: 40_000 }, (_, i) => `line ${i} ${Math.sin(i)}\n`).join("");
    writeModule(dir, { path: "example.com/big", version: "v1.0.0", files: { "data.txt": payload, "big.go": "package big\n" } });
    const want = readFileSync(join(dir, "example.com/big/@v/v1.0.0.zip"));
    const u = startUpstream(dir);
    u.delayMs = 300; // all 100 requests arrive while the one fetch is pending
    const p = startProxy(freshDir(), u.url);
    try {
      const bodies = await Promise.all(
        Array.from({ length: 100 }, async () => {
          const r = await fetch(`${p.url}/example.com/big/@v/v1.0.0.zip`);
          expect(r.status).toBe(200);
          return Buffer.from(await r.arrayBuffer());
        }),
      );
      expect(u.count("/example.com/big/@v/v1.0.0.zip")).toBe(1);
      for (const b of bodies) expect(b.equals(want)).toBe(true);
      expect(readFileSync(join(p.dir, "example.com/big/@v/v1.0.0.zip")).equals(want)).toBe(true);
      expect(walk(p.dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    } finally {
      p.stop();
      u.stop();
    }
  });

  test("path traversal attempts are refused with 4xx and write nothing outside the cache", async () => {
    const box = join(root.path, "box");
    mkdirSync(box, { recursive: true });
    writeFileSync(join(box, "secret"), "s3cret\n");
    const cache = join(box, "cache");
    // The upstream serves anything for any path, so a traversal bug would write.
    const srv = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response('{"Version":"v1.0.0"}\n') });
    const p = startProxy(cache, `http://127.0.0.1:${srv.port}`);
    try {
      const targets = [
        "/mod/../secret",
        "/mod/../../../../etc/passwd",
        "/mod/%2e%2e/secret",
        "/mod/%2e%2e/%2e%2e/x/@v/list",
        "/mod/example.com/%2e%2e/%2e%2e/@v/list",
        "/mod/example.com/..%2f..%2fsecret/@v/list",
        "/mod/%2f/etc/passwd/@v/list",
        "/mod//etc/passwd/@v/list",
        "/mod/example.com/x%00y/@v/list",
        "/mod/example.com/x%00/@v/v1.0.0.info",
        "/mod/example.com\\..\\..\\secret/@v/list",
        "/mod/example.com%5c..%5c..%5csecret/@v/list",
        "/mod/example.com/a/@v/..%2f..%2f..%2fsecret.info",
        "/mod/example.com/a/@v/%2e%2e.info",
        "/mod/example.com/a/@v/.%2e%2f.%2e%2fx.mod",
        "/mod/example.com/.hidden/@v/list",
        "/mod/sumdb/..%2f..%2fsecret",
        "/mod/sumdb/sum.golang.org/lookup/..%2f..%2fx@v1.0.0",
      ];
      for (const t of targets) {
        const st = await rawStatus(p.port, t);
        expect(st >= 400 && st < 500, `${t} -> ${st}`).toBe(true);
      }
      expect(walk(box).filter((f) => !f.startsWith("cache/sumdb/"))).toEqual(["secret"]);
      expect(readFileSync(join(box, "secret"), "utf8")).toBe("s3cret\n");
    } finally {
      p.stop();
      srv.stop(true);
    }
  });

  test("list is served stale when the upstream fails; not-found answers expire", async () => {
    const u = startUpstream(upDir);
    const p = startProxy(freshDir(), u.url, { listTtlMs: 0, notFoundTtlMs: 0 });
    try {
      expect((await fetch(`${p.url}/example.com/lib/@v/list`)).status).toBe(200);
      u.status.set("/example.com/lib/@v/list", 503);
      const stale = await fetch(`${p.url}/example.com/lib/@v/list`);
      expect(stale.status).toBe(200);
      expect(stale.headers.get("x-gostash-stale")).toBe("1");
      expect((await stale.text()).split("\n").filter(Boolean).sort()).toEqual(["v1.0.0", "v1.1.0"]);
      expect(p.metrics.get("modproxy_stale_serves")).toBe(1);
      // With a zero not-found ttl every miss asks again.
      await fetch(`${p.url}/example.com/nope/@v/list`);
      await fetch(`${p.url}/example.com/nope/@v/list`);
      expect(u.count("/example.com/nope/@v/list")).toBe(2);
    } finally {
      p.stop();
      u.stop();
    }
  });

  test("stale list is served at once and refreshed in the background", async () => {
    const dir = join(root.path, "swr-up");
    writeModule(dir, { path: "example.com/swr", version: "v1.0.0", files: { "a.go": "package swr\n" } });
    const u = startUpstream(dir);
    const p = startProxy(freshDir(), u.url, { listTtlMs: 0, swrMs: 3600_000 });
    try {
      expect(await (await fetch(`${p.url}/example.com/swr/@v/list`)).text()).toBe("v1.0.0\n");
      writeModule(dir, { path: "example.com/swr", version: "v1.1.0", files: { "a.go": "package swr\n" } });
      // Old answer at once; the refresh runs behind it.
      expect(await (await fetch(`${p.url}/example.com/swr/@v/list`)).text()).toBe("v1.0.0\n");
      for (let i = 0; i < 50 && u.count("/example.com/swr/@v/list") < 2; i++) await Bun.sleep(20);
      for (let i = 0; i < 50; i++) {
        if ((await (await fetch(`${p.url}/example.com/swr/@v/list`)).text()) === "v1.0.0\nv1.1.0\n") break;
        await Bun.sleep(20);
      }
      expect(readFileSync(join(p.dir, "example.com/swr/@v/list"), "utf8")).toBe("v1.0.0\nv1.1.0\n");
    } finally {
      p.stop();
      u.stop();
    }
  });

  test("file:// upstreams", async () => {
    const p = startProxy(freshDir(), `file://${upDir}`);
    try {
      const want = readFileSync(join(upDir, "example.com/lib/@v/v1.1.0.zip"));
      const r = await fetch(`${p.url}/example.com/lib/@v/v1.1.0.zip`);
      expect(Buffer.from(await r.arrayBuffer()).equals(want)).toBe(true);
      expect((await fetch(`${p.url}/example.com/missing/@v/list`)).status).toBe(404);
    } finally {
      p.stop();
    }
  });
});
