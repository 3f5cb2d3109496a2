// Property-based tests of the module proxy's path/version validator and of
// its HTTP handler (called in-process, behind the daemon's router and token
// check exactly as `gostash serve` wires them), seeded and bounded so CI is
// reproducible: GOSTASH_FUZZ_SEED, GOSTASH_FUZZ_RUNS (scripts/fuzz.ts runs
// them longer).
//
// Invariants: the validator only ever throws PathError, and whatever it
// accepts maps to a path inside the cache directory; escaping round-trips.
// The handler never answers 500 or throws on random paths, methods and
// headers, never touches a file outside its directory, never hangs, and
// well-formed requests are still answered correctly afterwards.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import fc from "fast-check";
import { requireHttpAuth, TokenChecker } from "../../src/auth/token.ts";
import { createHttpRouter } from "../../src/http/handler.ts";
import { createModProxy } from "../../src/modproxy/serve/proxy.ts";
import {
  checkModulePath,
  escapePath,
  escapeVersion,
  isCanonicalVersion,
  PathError,
  unescapePath,
  unescapeVersion,
} from "../../src/modproxy/module/path.ts";
import { parseModRequest } from "../../src/modproxy/module/layout.ts";
import { parseUpstreams } from "../../src/modproxy/upstream/fetch.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { tempDir } from "../helpers/env.ts";
import { startUpstream, writeTestModules, type Upstream } from "./helpers.ts";

const SEED = Number(process.env.GOSTASH_FUZZ_SEED ?? 20261122);
const RUNS = Number(process.env.GOSTASH_FUZZ_RUNS ?? 150);

const tmp = tempDir("gostash-modproxy-fuzz-");
afterAll(() => tmp.cleanup());

// ---- generators ---------------------------------------------------------------

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);
const lower = "abcdefghijklmnopqrstuvwxyz";
const chars = (alphabet: string, min: number, max: number) =>
  fc.array(pick([...alphabet]), { minLength: min, maxLength: max }).map((a) => a.join(""));

/** Valid-looking module paths: host with a dot, then elements (upper case, -._~). */
const moduleArb = fc
  .tuple(
    chars(lower + "0123456789", 1, 8),
    pick(["com", "org", "io", "example"]),
    fc.array(chars(lower + lower.toUpperCase() + "0123456789-_~.", 1, 8), { maxLength: 3 }),
  )
  .map(([host, tld, elems]) => [`${host}.${tld}`, ...elems].join("/"));

const versionArb = fc.oneof(
  fc.tuple(fc.nat(20), fc.nat(20), fc.nat(20)).map(([a, b, c]) => `v${a}.${b}.${c}`),
  fc.tuple(fc.nat(3), fc.nat(3), fc.nat(3), chars(lower + "0123456789.-", 1, 8)).map(([a, b, c, pre]) => `v${a}.${b}.${c}-${pre}`),
  fc.tuple(fc.nat(3), chars(lower + "ABC", 1, 6)).map(([a, q]) => `v${a}-${q}`),
  pick(["latest", "master", "v1", "v1.2", "v2.0.0+incompatible", "v0.0.0-20200101000000-abcdefabcdef"]),
);

/** Strings that hit the validator's edges: traversal, escapes, encodings, odd bytes. */
const nasty = pick([
  "..", ".", "%2e%2e", "%2E%2E", "%2f", "%5c", "\\", "%00", "!", "!!", "!A", "A", "~1", "CON", "con.txt", "aux", "COM1",
  "%ff", "%", "%zz", "é", "%c3%a9", "😀", "//", "/", "@v", "@latest", "@v/list", ".zip", ".mod", ".info", "sumdb",
  "lookup", "tile", "-", "_", " ", "%20", "\t", "?x=1", "#frag", ";", ":", "\u0000", "\r\n",
]);

const pathArb = fc.oneof(
  // Well-formed requests (some of which exist upstream).
  { weight: 3, arbitrary: fc.tuple(moduleArb, versionArb, pick(["info", "mod", "zip"])).map(([m, v, f]) => `${safeEscape(m)}/@v/${safeEscape(v)}.${f}`) },
  { weight: 1, arbitrary: moduleArb.map((m) => `${safeEscape(m)}/@v/list`) },
  { weight: 1, arbitrary: moduleArb.map((m) => `${safeEscape(m)}/@latest`) },
  { weight: 2, arbitrary: pick(["example.com/lib/@v/v1.1.0.zip", "example.com/dep/@v/v1.0.0.mod", "example.com/lib/@v/list", "example.com/!upper/!case/@latest", "sumdb/sum.test/supported", "sumdb/sum.test/lookup/example.com/lib@v1.1.0", "sumdb/sum.test/tile/8/0/000", "sumdb/sum.test/latest"]) },
  // Those, mutated with nasty pieces.
  {
    weight: 4,
    arbitrary: fc
      .tuple(pick(["example.com/lib/@v/v1.1.0.zip", "example.com/lib/@v/list", "sumdb/sum.test/lookup/x@v1.0.0", "x.com/@latest"]), fc.array(fc.tuple(fc.nat(60), nasty), { minLength: 1, maxLength: 4 }))
      .map(([base, muts]) => muts.reduce((p, [at, s]) => p.slice(0, at % (p.length + 1)) + s + p.slice(at % (p.length + 1)), base)),
  },
  // Anything at all.
  { weight: 2, arbitrary: fc.string({ maxLength: 80 }) },
  { weight: 1, arbitrary: fc.array(nasty, { maxLength: 8 }).map((a) => a.join("/")) },
);

function safeEscape(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `!${c.toLowerCase()}`);
}

const methodArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant("GET") },
  { weight: 2, arbitrary: fc.constant("HEAD") },
  { weight: 2, arbitrary: pick(["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]) },
  { weight: 1, arbitrary: chars(lower.toUpperCase(), 1, 10) },
);

const headerValue = fc.string({ maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e]/g, ""));
const headersArb = fc.dictionary(
  fc.oneof(
    pick(["range", "if-none-match", "if-modified-since", "accept-encoding", "accept", "content-type", "content-length", "user-agent", "x-forwarded-for", "cache-control", "connection", "authorization"]),
    chars(lower + "-", 1, 12),
  ),
  fc.oneof(
    headerValue,
    pick(["bytes=0-10", "bytes=-5", "bytes=5-", "bytes=10-0", "bytes=0-0,2-3", "bytes=99999999999-", "bytes=abc", "*", '"etag"', "W/\"x\"", "gzip, br", "Basic !!!", "Bearer ", "Basic dXNlcg=="]),
  ),
  { maxKeys: 5 },
);

// ---- the validator ------------------------------------------------------------

describe("module path and version validator", () => {
  test("parseModRequest: only PathError for bad input; what it accepts stays inside the cache directory", () => {
    const dir = resolve(tmp.path, "cache");
    fc.assert(
      fc.property(pathArb, (raw) => {
        let r;
        try {
          r = parseModRequest(raw);
        } catch (err) {
          if (!(err instanceof PathError)) throw err;
          return;
        }
        if (r.kind === "sumdb") return; // checked by the sumdb handler (below, over HTTP)
        const parts = [r.escModule, "@v", r.kind === "file" ? `${r.escVersion}.${r.file}` : "list"];
        const full = resolve(dir, ...parts);
        expect(full.startsWith(dir + sep)).toBe(true);
        for (const e of r.escModule.split("/")) {
          expect(e === "" || e === "." || e === ".." || e.startsWith(".")).toBe(false);
        }
        expect(/[\x00-\x1f\\]/.test(full)).toBe(false);
        // The escaped forms are the canonical ones for what they stand for.
        expect(escapePath(r.module)).toBe(r.escModule);
        if (r.kind === "file") {
          expect(escapeVersion(r.version)).toBe(r.escVersion);
          expect(r.canonical).toBe(isCanonicalVersion(r.version));
          if (r.file !== "info") expect(r.canonical).toBe(true);
        }
      }),
      { seed: SEED, numRuns: RUNS * 4 },
    );
  });

  test("escape/unescape round-trip for module paths and versions; checkModulePath agrees with unescapePath", () => {
    fc.assert(
      fc.property(fc.oneof(moduleArb, fc.string({ maxLength: 40 })), versionArb, (m, v) => {
        let ok = true;
        try {
          checkModulePath(m);
        } catch (err) {
          expect(err).toBeInstanceOf(PathError);
          ok = false;
        }
        if (ok) {
          const e = escapePath(m);
          expect(/[A-Z]/.test(e)).toBe(false);
          expect(unescapePath(e)).toBe(m);
        } else {
          expect(() => escapePath(m)).toThrow(PathError);
        }
        try {
          const ev = escapeVersion(v);
          expect(unescapeVersion(ev)).toBe(v);
        } catch (err) {
          expect(err).toBeInstanceOf(PathError);
        }
      }),
      { seed: SEED, numRuns: RUNS * 4 },
    );
  });
});

// ---- the HTTP handler ------------------------------------------------------------

/** path -> size:mtime of every file and directory under dir (but skip). */
function snapshot(dir: string, skip: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (p === skip) continue;
      const st = statSync(p);
      out.set(p, `${st.isDirectory() ? "d" : st.size}:${st.mtimeMs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

describe("/mod HTTP handler (in-process, behind the router and token check)", () => {
  const box = join(tmp.path, "box");
  const proxyDir = join(box, "proxy");
  const upDir = join(box, "up");
  let up: Upstream;
  let fetchFn: (req: Request) => Response | Promise<Response>;
  const TOKEN = "fuzz-token";
  const metrics = new Metrics();

  beforeAll(() => {
    writeTestModules(upDir);
    up = startUpstream(upDir);
    const proxy = createModProxy({
      dir: proxyDir,
      upstreams: parseUpstreams(up.url),
      sumdbs: [{ name: "sum.test", url: `${up.url}/no-sumdb` }],
      listTtlMs: 60_000,
      swrMs: 0,
      notFoundTtlMs: 60_000,
      timeoutMs: 5_000,
      retries: 0,
      metrics,
      logger: createLogger({}),
    });
    const router = createHttpRouter({ metrics });
    router.mount("/mod", proxy.fetch);
    fetchFn = requireHttpAuth(new TokenChecker({ token: TOKEN, readToken: "fuzz-read" }), router.fetch);
  });
  afterAll(() => up?.stop());

  async function call(method: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: Uint8Array } | null> {
    let req: Request;
    try {
      req = new Request(`http://127.0.0.1/mod/${path}`, { method, headers, body: method === "GET" || method === "HEAD" ? undefined : "x" });
    } catch {
      return null; // not even a request the HTTP layer would build
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, j) => (timer = setTimeout(() => j(new Error(`hang: ${method} ${JSON.stringify(path)}`)), 20_000)));
    try {
      return await Promise.race([
        (async () => {
          const res = await fetchFn(req);
          const body = new Uint8Array(await res.arrayBuffer());
          return { status: res.status, body };
        })(),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  test("random paths, methods and headers: no 5xx, no throw, no hang, nothing touched outside the proxy dir", async () => {
    const before = snapshot(tmp.path, proxyDir);
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(methodArb, pathArb, headersArb, fc.oneof(
        { weight: 6, arbitrary: fc.constant<string | null>(TOKEN) },
        { weight: 2, arbitrary: fc.constant<string | null>("fuzz-read") },
        { weight: 1, arbitrary: fc.constantFrom<string | null>("wrong", null) },
      ), async (method, path, headers, tok) => {
        const h: Record<string, string> = { ...headers };
        if (tok !== null && !("authorization" in h)) h.authorization = `Bearer ${tok}`;
        let r;
        try {
          r = await call(method, path, h);
        } catch (err) {
          throw new Error(`${method} /mod/${JSON.stringify(path)} ${JSON.stringify(h)}: ${(err as Error).stack ?? err}`);
        }
        if (!r) return;
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (r.status >= 500) throw new Error(`${method} /mod/${JSON.stringify(path)} ${JSON.stringify(h)} -> ${r.status} ${new TextDecoder().decode(r.body).slice(0, 200)}`);
      }),
      { seed: SEED, numRuns: RUNS * 2 },
    );
    // The proxy really was exercised: some answers were served, some refused.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(0);
    expect((statuses.get(400) ?? 0) + (statuses.get(404) ?? 0)).toBeGreaterThan(0);
    if (process.env.GOSTASH_FUZZ_VERBOSE) console.error("statuses:", Object.fromEntries(statuses));
    // Nothing outside the proxy directory changed (the upstream's files included).
    expect(snapshot(tmp.path, proxyDir)).toEqual(before);
    // Everything inside it is a real file inside it.
    for (const f of filesUnder(proxyDir)) expect(resolve(f).startsWith(resolve(proxyDir) + sep)).toBe(true);
  }, 600_000);

  test("well-formed requests are still answered correctly afterwards", async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const zip = await call("GET", "example.com/lib/@v/v1.1.0.zip", auth);
    expect(zip!.status).toBe(200);
    expect(Buffer.from(zip!.body).equals(readFileSync(join(upDir, "example.com/lib/@v/v1.1.0.zip")))).toBe(true);
    const mod = await call("GET", "example.com/dep/@v/v1.0.0.mod", auth);
    expect(mod!.status).toBe(200);
    expect(new TextDecoder().decode(mod!.body)).toBe(readFileSync(join(upDir, "example.com/dep/@v/v1.0.0.mod"), "utf8"));
    const list = await call("GET", "example.com/lib/@v/list", { authorization: "Bearer fuzz-read" });
    expect(new TextDecoder().decode(list!.body).trim().split("\n").sort()).toEqual(["v1.0.0", "v1.1.0"]);
    const info = await call("GET", "example.com/!upper/!case/@v/v1.0.0.info", auth);
    expect(info!.status).toBe(200);
    expect(JSON.parse(new TextDecoder().decode(info!.body)).Version).toBe("v1.0.0");
    expect((await call("GET", "example.com/lib/@v/v1.1.0.zip", {}))!.status).toBe(401);
  });
});
