// The status page's routes called in-process as `Request -> Response`,
// behind the same token check the daemon puts in front of its router: who
// may see them, that nothing there changes state, that the page is one
// self-contained document whose CSP allows only itself and its own origin,
// and what status.json says.
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { requireHttpAuth, TokenChecker } from "../../src/auth/token.ts";
import { createHttpRouter } from "../../src/http/handler.ts";
import { bucketState, type StatusDocument } from "../../src/http/status/data.ts";
import { History } from "../../src/http/status/history.ts";
import { addStatusRoutes } from "../../src/http/status/routes.ts";
import type { BucketView, StatusSources } from "../../src/http/status/sources.ts";
import { Metrics } from "../../src/util/metrics.ts";

const RW = "rw-token-0123";
const RO = "ro-token-4567";

function daemon(over: Partial<StatusSources> = {}) {
  const metrics = new Metrics();
  metrics.inc("gets", 10);
  metrics.inc("hits_local", 7);
  metrics.inc("hits_remote", 1);
  metrics.inc("misses", 2);
  metrics.gauge("upload_queue_depth", () => 4);
  const history = new History(metrics);
  const router = createHttpRouter({ metrics });
  const sources: StatusSources = {
    metrics,
    history,
    version: "9.9.9",
    startedAt: Date.now() - 60_000,
    facts: { plugin: "/run/g.sock", cache_dir: "/var/cache/g", bucket: null, modproxy: null },
    flags: [{ name: "--token", value: "***", source: "GOSTASH_TOKEN" }],
    commands: () => ({ open: 0, recent: [] }),
    ...over,
  };
  addStatusRoutes(router, sources);
  const handle = requireHttpAuth(new TokenChecker({ token: RW, readToken: RO }), router.fetch);
  const get = (path: string, token?: string, headers: Record<string, string> = {}) =>
    handle(new Request(`http://127.0.0.1:1${path}`, { headers: { ...headers, ...(token ? { Authorization: `Bearer ${token}` } : {}) } }));
  return { metrics, history, handle, get };
}

/** The page's HTML as a browser gets it (gunzipped when sent gzip). */
async function html(res: Response): Promise<string> {
  const bytes = new Uint8Array(await res.arrayBuffer());
  return new TextDecoder().decode(res.headers.get("content-encoding") === "gzip" ? Bun.gunzipSync(bytes) : bytes);
}

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as StatusDocument;
const inline = (page: string, tag: string) => new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(page)![1]!;
const sha256 = (s: string) => `'sha256-${createHash("sha256").update(s).digest("base64")}'`;

describe("access", () => {
  test("with tokens set: no token 401, the read token 200, the read-write token 200; page and data alike", async () => {
    const d = daemon();
    for (const path of ["/", "/status.json"]) {
      expect((await d.get(path)).status).toBe(401);
      expect((await d.get(path, "wrong")).status).toBe(401);
      expect((await d.get(path, RO)).status).toBe(200);
      expect((await d.get(path, RW)).status).toBe(200);
    }
    // Basic auth as a browser sends it after its prompt: any user name, the token as password.
    const basic = await d.handle(new Request("http://127.0.0.1:1/", { headers: { Authorization: `Basic ${btoa(`me:${RO}`)}` } }));
    expect(basic.status).toBe(200);
  });

  test("nothing there changes state: other methods are refused, and reading counts nothing", async () => {
    const d = daemon();
    for (const path of ["/", "/status.json"]) {
      for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
        const as = (token: string) => d.handle(new Request(`http://127.0.0.1:1${path}`, { method, headers: { Authorization: `Bearer ${token}` } }));
        expect((await as(RO)).status).toBe(403);
        expect((await as(RW)).status).toBe(405);
      }
    }
    const before = JSON.stringify(d.metrics.snapshot());
    await d.get("/", RO);
    await d.get("/status.json?since=5&history=1m", RO);
    expect(JSON.stringify(d.metrics.snapshot())).toBe(before);
  });
});

describe("the page", () => {
  test("one self-contained document: nothing loaded from anywhere, and a CSP that allows only its own script, style and origin", async () => {
    const res = await daemon().get("/", RO);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const page = await html(res);
    const script = inline(page, "script");
    const style = inline(page, "style");
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain(`script-src ${sha256(script)}`);
    expect(csp).toContain(`style-src ${sha256(style)}`);
    expect(csp).toContain("connect-src 'self'");
    // Every src/href is relative or data:, no stylesheet imports or url()s.
    const refs = [...page.matchAll(/\b(?:src|href)\s*=\s*"([^"]*)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    for (const r of refs) expect(r).toMatch(/^(data:|[a-z][a-z/.]*$)/);
    expect(page).not.toMatch(/@import|url\(|<link rel="stylesheet"|<script src/);
    expect(page.match(/<script>/g)).toHaveLength(1);
  });

  test("its script is valid JavaScript in strict mode", async () => {
    const script = inline(await html(await daemon().get("/", RO)), "script");
    expect(() => new Function(script)).not.toThrow();
    expect(script.startsWith('(() => {\n"use strict";')).toBe(true);
  });

  test("gzip when the client takes it, the same bytes unpacked", async () => {
    const d = daemon();
    const plain = await d.get("/", RO);
    const packed = await d.get("/", RO, { "Accept-Encoding": "gzip, deflate, br" });
    expect(plain.headers.get("content-encoding")).toBeNull();
    expect(packed.headers.get("content-encoding")).toBe("gzip");
    expect(await html(packed)).toBe(await html(plain));
  });
});

describe("status.json", () => {
  test("every metric as /debug/vars has it, the history, and what is not configured as null", async () => {
    const d = daemon();
    d.history.sample(Date.now() - 10_000);
    d.history.sample(Date.now() - 5_000);
    const doc = await json(d.get("/status.json", RO));
    expect(doc.metrics).toEqual(d.metrics.snapshot());
    expect(doc.version).toBe("9.9.9");
    expect(doc.uptimeSeconds).toBeGreaterThanOrEqual(60);
    expect(doc.bucket).toBeNull();
    expect(doc.modproxy).toBeNull();
    expect(doc.timeSavedMetric).toBeNull();
    expect(doc.history.resolution).toBe("5s");
    expect(doc.history.t).toHaveLength(2);
    expect(doc.history.series.gets).toEqual([10, 10]);
    const later = await json(d.get(`/status.json?since=${doc.history.t[0]}`, RO));
    expect(later.history.t).toEqual([doc.history.t[1]!]);
  });

  test("time saved, the bucket and the most requested modules when the daemon has them", async () => {
    const bucket: BucketView = { name: "ci-cache", readOnly: false, breaker: "closed", failingNow: true, lastSuccessAt: 0, lastError: { at: 5, message: "s3: get x: HTTP 503 SlowDown", kind: "http", status: 503, code: "SlowDown" } };
    const d = daemon({ bucket: () => bucket, topModules: () => Array.from({ length: 30 }, (_, i) => ({ key: `example.com/m${i}`, count: 30 - i, error: 0 })) });
    d.metrics.inc("time_saved_seconds", 42);
    const doc = await json(d.get("/status.json", RO));
    expect(doc.timeSavedMetric).toBe("time_saved_seconds");
    expect(doc.bucket).toEqual({ ...bucket, state: "failing" });
    expect(doc.modproxy!.top).toHaveLength(15);
    expect(doc.modproxy!.top[0]).toEqual({ key: "example.com/m0", count: 30, error: 0 });
  });

  test("the bucket's state, from its breaker, its latest request and --read-only", () => {
    const b = (over: Partial<BucketView>): BucketView => ({ name: "b", readOnly: false, breaker: "closed", failingNow: false, lastError: null, lastSuccessAt: 0, ...over });
    expect(bucketState(b({}))).toBe("healthy");
    expect(bucketState(b({ readOnly: true }))).toBe("read-only");
    expect(bucketState(b({ failingNow: true }))).toBe("failing");
    expect(bucketState(b({ breaker: "open", failingNow: true }))).toBe("breaker-open");
    expect(bucketState(b({ breaker: "half-open", readOnly: true }))).toBe("recovering");
  });
});
