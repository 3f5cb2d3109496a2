// The reverse proxy's handler (Request -> Response), in-process, against a
// real local origin and a real S3 server (versitygw): what is cached
// where, X-Cache, one origin fetch for concurrent requests, verification
// of tampered files and objects, a broken bucket, a failing origin, the
// token, loops.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TokenChecker } from "../../src/auth/token.ts";
import type { S3Config } from "../../src/config/config.ts";
import type { RevProxyConfig } from "../../src/config/revproxy.ts";
import { entryKey } from "../../src/revproxy/keys.ts";
import { openRevProxy, type RevProxy } from "../../src/revproxy/open.ts";
import { VIA_TOKEN } from "../../src/revproxy/origin.ts";
import { Targets } from "../../src/revproxy/targets.ts";
import { createS3Client, type S3Client } from "../../src/s3/client.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { tempDir } from "../helpers/env.ts";
import { startFaultProxy, type FaultProxy } from "../helpers/faultproxy.ts";
import { startS3Server, type S3Server } from "../helpers/s3server.ts";
import { bodyOf, startOrigin, type Origin } from "./origin.ts";

const tmp = tempDir("gostash-revproxy-handler-");
let origin: Origin;
let s3: S3Server;
let faulty: FaultProxy;
const clients: S3Client[] = [];
let seq = 0;
/** The variables this file sets for the S3 client's credentials, as they were (restored after: later files start daemons). */
const savedEnv: Record<string, string | undefined> = {};

beforeAll(async () => {
  origin = startOrigin();
  s3 = await startS3Server();
  for (const [k, v] of Object.entries(s3.env)) {
    savedEnv[k] = process.env[k];
    process.env[k] = v;
  }
  faulty = await startFaultProxy(s3.endpoint);
}, 60_000);

afterAll(async () => {
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  for (const c of clients) c.close();
  origin?.stop();
  await faulty?.stop();
  await s3?.stop();
  tmp.cleanup();
});

interface Proxy {
  rp: RevProxy;
  metrics: Metrics;
  client: S3Client | null;
  dir: string;
  get(path: string, init?: RequestInit): Promise<Response>;
}

function s3cfg(endpoint: string): S3Config {
  return { bucket: s3.bucket, region: "us-east-1", prefix: "rp", endpoint, pathStyle: true, minUploadSize: 0, uploadConcurrency: 4, concurrency: 8, readOnly: false, flushTimeoutMs: 5000, compress: false, timeoutMs: 2000 };
}

/** A proxy for the origin's plain-HTTP port, with its own cache dir, and a bucket when asked. */
function proxy(o: { bucket?: "s3" | "faulty"; token?: string; timeoutMs?: number; dir?: string } = {}): Proxy {
  const metrics = new Metrics();
  const logger = createLogger();
  const dir = o.dir ?? join(tmp.path, `cache-${++seq}`, "revproxy");
  const client = o.bucket ? createS3Client(s3cfg(o.bucket === "s3" ? s3.endpoint : faulty.endpoint), { metrics, logger }) : null;
  if (client) clients.push(client);
  const cfg: RevProxyConfig = {
    targets: Targets.parse(`localhost:${origin.httpPort}`, "--revproxy"),
    dir,
    maxEntryBytes: 64 << 20,
    memoryBytes: 8 << 20,
    timeoutMs: o.timeoutMs ?? 10_000,
    tunnel: true,
    installCA: false,
    expiryMs: 86_400_000,
  };
  const rp = openRevProxy(cfg, { metrics, logger, client, readOnly: false, tokens: new TokenChecker({ token: o.token }) });
  return { rp, metrics, client, dir, get: (path, init) => rp.handler(new Request(`${origin.http}${path}`, init), { scheme: "http", authenticated: false }) };
}

/** Waits until no fill is under way: what was fetched is kept (or dropped) by then. */
async function settled(p: Proxy): Promise<void> {
  const end = Date.now() + 10_000;
  while (p.metrics.get("revproxy_fills_in_flight") > 0) {
    if (Date.now() > end) throw new Error("a fill did not settle within 10s");
    await Bun.sleep(5);
  }
}

const unique = (kind: string) => `/${kind}/t${++seq}-${Math.random().toString(36).slice(2)}`;

describe("what is cached, and X-Cache", () => {
  test("immutable: fetched and cached, then a local hit with the same bytes; one origin fetch", async () => {
    const p = proxy();
    const path = unique("immutable");
    const first = await p.get(path);
    expect(first.headers.get("x-cache")).toBe("fetch, cached");
    expect(await first.text()).toBe(bodyOf(path));
    await settled(p);
    const second = await p.get(path);
    expect(second.headers.get("x-cache")).toBe("hit, local");
    expect(second.headers.get("x-cache-id")).toBe(entryKey(`${origin.http}${path}`).slice(0, 12));
    expect(second.headers.get("etag")).toBeString();
    expect(await second.text()).toBe(bodyOf(path));
    expect(origin.count(path)).toBe(1);
    expect(p.metrics.get("revproxy_stored")).toBe(1);
    expect(p.metrics.get("revproxy_hits_local")).toBe(1);
  });

  test("must-revalidate with max-age over 60 days is kept on disk too", async () => {
    const p = proxy();
    const path = unique("revalidate");
    await (await p.get(path)).text();
    await settled(p);
    expect((await p.get(path)).headers.get("x-cache")).toBe("hit, local");
    expect(origin.count(path)).toBe(1);
  });

  test("a short max-age is kept in memory only", async () => {
    const p = proxy();
    const path = unique("short");
    const first = await p.get(path);
    expect(first.headers.get("x-cache")).toBe("fetch, cached, volatile");
    const text = await first.text();
    await settled(p);
    const second = await p.get(path);
    expect(second.headers.get("x-cache")).toBe("hit, memory");
    expect(await second.text()).toBe(text);
    expect(origin.count(path)).toBe(1);
    expect(readdirSync(p.dir).filter((n) => /^[0-9a-f]{2}$/.test(n)).flatMap((d) => readdirSync(join(p.dir, d)))).toEqual([]);
  });

  test("no-store and private are fetched every time, marked uncached", async () => {
    const p = proxy();
    for (const kind of ["nostore", "private"]) {
      const path = unique(kind);
      const a = await p.get(path);
      expect(a.headers.get("x-cache")).toBe("fetch, uncached");
      await a.text();
      await (await p.get(path)).text();
      expect(origin.count(path)).toBe(2);
    }
  });

  test("the answer to a request with Authorization is stored only if it may be shared (public, must-revalidate)", async () => {
    const p = proxy();
    const auth = { headers: { authorization: "Bearer secret" } };
    const bare = unique("bare-immutable");
    const a = await p.get(bare, auth);
    expect(a.headers.get("x-cache")).toBe("fetch, uncached");
    await a.text();
    await settled(p);
    expect((await p.get(bare)).headers.get("x-cache")).toBe("fetch, cached");
    for (const kind of ["immutable", "revalidate"]) {
      const path = unique(kind);
      await (await p.get(path, auth)).text();
      await settled(p);
      expect((await p.get(path)).headers.get("x-cache")).toBe("hit, local");
    }
  });

  test("HEAD, ranges and errors pass through; If-None-Match on a hit is a 304", async () => {
    const p = proxy();
    const path = unique("immutable");
    expect((await p.get(path, { method: "HEAD" })).headers.get("x-cache")).toBe("fetch, uncached");
    const ranged = await p.get(path, { headers: { range: "bytes=0-3" } });
    expect(ranged.headers.get("x-cache")).toBe("fetch, uncached");
    await ranged.text();
    const notFound = await p.get("/status/404");
    expect(notFound.status).toBe(404);
    expect(notFound.headers.get("x-cache")).toBe("fetch, uncached");
    const hit = await p.get(path);
    const etag = hit.headers.get("etag")!;
    await hit.text();
    await settled(p);
    const again = await p.get(path, { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    expect(again.headers.get("x-cache")).toBe("hit, local");
  });

  test("a host that is not listed gets 502, and the origin sees nothing", async () => {
    const p = proxy();
    const before = origin.total();
    const res = await p.rp.handler(new Request(`http://127.0.0.1:${origin.httpPort}/immutable/x`), { scheme: "http", authenticated: false });
    expect(res.status).toBe(502);
    expect(res.headers.get("x-cache")).toBe("refused");
    expect(origin.total()).toBe(before);
    expect(p.metrics.get("revproxy_refused")).toBe(1);
  });
});

describe("Vary", () => {
  const accept = (a: string) => ({ headers: { accept: a } });

  test("an answer with Vary: Accept serves only requests with the same Accept; others are fetched", async () => {
    const p = proxy();
    const path = unique("vary");
    expect(await (await p.get(path, accept("text/a"))).text()).toBe(`${path} for text/a\n`);
    await settled(p);
    const same = await p.get(path, accept("text/a"));
    expect(same.headers.get("x-cache")).toBe("hit, local");
    expect(same.headers.get("vary")).toBe("Accept");
    expect(await same.text()).toBe(`${path} for text/a\n`);
    const other = await p.get(path, accept("text/b"));
    expect(other.headers.get("x-cache")).not.toStartWith("hit");
    expect(await other.text()).toBe(`${path} for text/b\n`);
    await settled(p);
    // No Accept at all is a value of its own (the origin's fetch then says */*).
    expect(await (await p.get(path)).text()).not.toBe(`${path} for text/b\n`);
    expect(origin.count(path)).toBe(3);
  });

  test("clients joining a fetch in progress get it only if their Vary'd headers match the leader's", async () => {
    const p = proxy();
    const path = unique("vary");
    const kinds = ["text/a", "text/b", "text/a", "text/b"];
    const bodies = await Promise.all(kinds.map(async (a) => (await p.get(path, accept(a))).text()));
    expect(bodies).toEqual(kinds.map((a) => `${path} for ${a}\n`));
  });

  test("Vary: Accept-Encoding stays cacheable, its values compared", async () => {
    const p = proxy();
    const path = unique("vary-ae");
    const enc = (e: string) => ({ headers: { "accept-encoding": e, "x-client-encoding": e } });
    expect(await (await p.get(path, enc("gzip"))).text()).toBe(`${path} for gzip\n`);
    await settled(p);
    const hit = await p.get(path, enc("gzip"));
    expect(hit.headers.get("x-cache")).toBe("hit, local");
    expect(await hit.text()).toBe(`${path} for gzip\n`);
    expect(await (await p.get(path, enc("br"))).text()).toBe(`${path} for br\n`);
    expect(origin.count(path)).toBe(2);
  });

  test("Vary: * is never stored", async () => {
    const p = proxy();
    const path = unique("vary-star");
    await (await p.get(path)).text();
    await settled(p);
    const again = await p.get(path);
    expect(again.headers.get("x-cache")).toBe("fetch, uncached");
    expect(await again.text()).toBe(`${path} served 2\n`);
  });
});

describe("one fetch for many", () => {
  test("50 concurrent requests for one uncached URL: one origin fetch, 50 identical bodies", async () => {
    const p = proxy();
    const path = `/slow/300${unique("x")}`;
    const answers = await Promise.all(Array.from({ length: 50 }, () => p.get(path)));
    const bodies = await Promise.all(answers.map((r) => r.text()));
    expect(origin.count(path)).toBe(1);
    expect(new Set(bodies)).toEqual(new Set([bodyOf(path)]));
    const kinds = answers.map((r) => r.headers.get("x-cache"));
    expect(kinds.filter((k) => k === "fetch, cached")).toHaveLength(1);
    expect(kinds.filter((k) => k === "fetch, cached, shared")).toHaveLength(49);
    expect(p.metrics.get("revproxy_shared")).toBe(49);
  });

  test("a large download streams to every client while it lands on disk", async () => {
    const p = proxy();
    const path = `/big/8${unique("n")}`;
    const [a, b] = await Promise.all([p.get(path), p.get(path)]);
    const [ba, bb] = await Promise.all([a.arrayBuffer(), b.arrayBuffer()]);
    expect(ba.byteLength).toBe(8 << 20);
    expect(Buffer.from(ba).equals(Buffer.from(bb))).toBe(true);
    expect(origin.count(path)).toBe(1);
    await settled(p);
    const hit = await p.get(path);
    expect(hit.headers.get("x-cache")).toBe("hit, local");
    expect(Buffer.from(await hit.arrayBuffer()).equals(Buffer.from(ba))).toBe(true);
  });
});

describe("verification", () => {
  test("a tampered local file is not served: deleted, counted, fetched again", async () => {
    const p = proxy();
    const path = unique("immutable");
    await (await p.get(path)).text();
    await settled(p);
    const key = entryKey(`${origin.http}${path}`);
    const file = join(p.dir, key.slice(0, 2), key);
    const bytes = readFileSync(file);
    bytes[bytes.length - 2]! ^= 0xff;
    writeFileSync(file, bytes);
    const res = await p.get(path);
    expect(res.headers.get("x-cache")).toBe("fetch, cached");
    expect(await res.text()).toBe(bodyOf(path));
    expect(origin.count(path)).toBe(2);
    expect(p.metrics.get("revproxy_integrity_failures")).toBe(1);
  });

  test("an entry whose file changed just before it was verified is hashed again on its next hit, until that change is old enough to be told from a new one", async () => {
    // Linux stamps files with a coarse clock: a write in the same tick as
    // the one before it leaves the times as they were (a tampered file went
    // out as verified once in CI). So the memory of a verification counts
    // only once the file's last change is RACY_MS older than it.
    const p = proxy();
    const path = unique("immutable");
    await (await p.get(path)).text();
    await settled(p);
    const verifications = () => p.metrics.get("revproxy_local_verifications");
    const hit = async () => {
      const res = await p.get(path);
      expect(res.headers.get("x-cache")).toBe("hit, local");
      expect(await res.text()).toBe(bodyOf(path));
    };
    const stored = verifications();
    await hit(); // remembered at commit, its file renamed into place just then: hashed
    expect(verifications()).toBe(stored + 1);
    await Bun.sleep(150);
    await hit(); // hashed again or not, depending on how long the first hit took; either way settled now
    const settledAt = verifications();
    await hit();
    await hit();
    expect(verifications()).toBe(settledAt);
    expect(origin.count(path)).toBe(1);
  });
});

describe("the bucket", () => {
  test("a second proxy with an empty disk and the same bucket serves it from the bucket", async () => {
    const a = proxy({ bucket: "s3" });
    const path = unique("immutable");
    await (await a.get(path)).text();
    await settled(a);
    expect((await a.client!.uploads.flush(10_000)).left).toBe(0);
    expect(a.metrics.get("revproxy_uploads")).toBe(1);
    const key = entryKey(`${origin.http}${path}`);
    expect(await s3.listKeys()).toContain(`rp/revproxy/${key.slice(0, 2)}/${key}`);
    const b = proxy({ bucket: "s3" });
    const res = await b.get(path);
    expect(res.headers.get("x-cache")).toBe("hit, remote");
    expect(await res.text()).toBe(bodyOf(path));
    expect((await b.get(path)).headers.get("x-cache")).toBe("hit, local");
    expect(origin.count(path)).toBe(1);
  });

  test("a tampered bucket object is not served: the origin is asked", async () => {
    const a = proxy({ bucket: "s3" });
    const path = unique("immutable");
    await (await a.get(path)).text();
    await settled(a);
    await a.client!.uploads.flush(10_000);
    const key = entryKey(`${origin.http}${path}`);
    const file = join(s3.dataDir, s3.bucket, "rp", "revproxy", key.slice(0, 2), key);
    const bytes = readFileSync(file);
    bytes[bytes.length - 1]! ^= 0x01;
    writeFileSync(file, bytes);
    const b = proxy({ bucket: "s3" });
    const res = await b.get(path);
    expect(res.headers.get("x-cache")).toBe("fetch, cached");
    expect(await res.text()).toBe(bodyOf(path));
    expect(b.metrics.get("revproxy_integrity_failures")).toBe(1);
    expect(origin.count(path)).toBe(2);
  });

  test("a broken bucket means misses, never a failed download", async () => {
    for (const fault of [{ status500: true }, { down: true }, { corruptBody: true }, { cutBody: true }, { hang: true }] as const) {
      // The entry is in the bucket; the bucket then fails in one way.
      const seeder = proxy({ bucket: "s3" });
      const path = unique("immutable");
      await (await seeder.get(path)).text();
      await settled(seeder);
      expect((await seeder.client!.uploads.flush(10_000)).left).toBe(0);
      faulty.set(fault);
      try {
        const p = proxy({ bucket: "faulty" });
        const res = await p.get(path);
        expect(res.status).toBe(200);
        expect(res.headers.get("x-cache")).toBe("fetch, cached");
        expect(await res.text()).toBe(bodyOf(path));
        expect(origin.count(path)).toBe(2);
        expect(p.metrics.get("revproxy_remote_errors") + p.metrics.get("revproxy_integrity_failures")).toBe(1);
      } finally {
        faulty.reset();
      }
    }
  }, 60_000);
});

describe("failures and access", () => {
  test("a local disk that cannot take an entry still answers every client (not stored, counted)", async () => {
    const p = proxy();
    const path = unique("slow/200");
    // The entry's directory cannot be made: a file stands where it goes (root ignores modes).
    writeFileSync(join(p.dir, entryKey(`${origin.http}${path}`).slice(0, 2)), "");
    const answers = await Promise.all([1, 2, 3].map(() => p.get(path)));
    for (const res of answers) {
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(bodyOf(path));
    }
    expect(p.metrics.get("revproxy_store_errors")).toBeGreaterThan(0);
    expect(p.metrics.get("revproxy_stored")).toBe(0);
  });

  test("an origin that is down is a 502, one that does not answer a 504; both marked error", async () => {
    const p = proxy({ timeoutMs: 500 });
    const slow = await p.get(`/slow/3000${unique("t")}`);
    expect(slow.status).toBe(504);
    expect(slow.headers.get("x-cache")).toBe("error");
    const down = await p.rp.handler(new Request("http://localhost:1/immutable/x"), { scheme: "http", authenticated: false });
    expect(down.status).toBe(502); // not listed
    const q = proxy();
    origin.stop();
    try {
      const res = await q.get(unique("immutable"));
      expect(res.status).toBe(502);
      expect(res.headers.get("x-cache")).toBe("error");
    } finally {
      origin = startOrigin({ httpPort: origin.httpPort });
    }
  });

  test("with a token: 407 without Proxy-Authorization, served with it", async () => {
    const p = proxy({ token: "s3cr3t" });
    const path = unique("immutable");
    const refused = await p.get(path);
    expect(refused.status).toBe(407);
    expect(refused.headers.get("proxy-authenticate")).toContain("Basic");
    expect(origin.count(path)).toBe(0);
    const basic = `Basic ${Buffer.from("user:s3cr3t").toString("base64")}`;
    const ok = await p.get(path, { headers: { "proxy-authorization": basic } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe(bodyOf(path));
  });

  test("a request that comes back through this daemon is refused (508), not looped", async () => {
    const p = proxy();
    const res = await p.get(unique("immutable"), { headers: { via: `1.1 ${VIA_TOKEN}` } });
    expect(res.status).toBe(508);
  });
});
