// One contract for every build-cache store, as the go command sees it
// through the protocol's callbacks (get, put, close), run against each:
//
//   disk                     the local disk alone (Go's layout)
//   tiered, same machine     local disk + bucket (versitygw)
//   tiered, fresh machine    written by one machine, read by another with an
//                            empty disk and the same bucket (a fresh CI runner)
//   packs, fresh machine     the same through daemon connections: the writer's
//                            close uploads its pack (docs/packs.md), the reader
//                            streams it
//   read-only connection     the daemon's view for a --read-token client:
//                            reads the shared cache (written here through a
//                            read-write connection)
//
// Every case sets up what it reads; no case depends on another.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { openBuildCache, type BuildCache } from "../../src/buildcache/open.ts";
import type { CacheHandler, PutWriter } from "../../src/cacheprog/session.ts";
import type { S3Config } from "../../src/config/config.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { tempDir, setEnv } from "../helpers/env.ts";
import { startS3Server, type S3Server } from "../helpers/s3server.ts";

let s3: S3Server;
let restoreEnv = () => {};
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  s3 = await startS3Server();
  restoreEnv = setEnv(s3.env);
}, 60_000);

afterAll(async () => {
  restoreEnv();
  for (const c of cleanups.reverse()) await c();
  await s3?.stop();
});

interface Subject {
  /** Where puts go. */
  writer: CacheHandler;
  /** Where gets go, once settle() has run. */
  reader: CacheHandler;
  /** Makes what was put readable (uploads flushed). */
  settle(): Promise<void>;
  /** Directories a store may write temp files into. */
  dirs: string[];
}

const hex = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
const sha256 = (b: Uint8Array) => new Bun.CryptoHasher("sha256").update(b).digest("hex");

function s3cfg(prefix: string): S3Config {
  return {
    bucket: s3.bucket,
    region: "us-east-1",
    prefix,
    endpoint: s3.endpoint,
    pathStyle: true,
    minUploadSize: 0,
    uploadConcurrency: 4,
    concurrency: 8,
    readOnly: false,
    flushTimeoutMs: 10_000,
    compress: true,
    timeoutMs: 5_000,
  };
}

async function machine(s3: S3Config | null): Promise<{ cache: BuildCache; dir: string; metrics: Metrics }> {
  const t = tempDir("gostash-contract-");
  const metrics = new Metrics();
  const cache = await openBuildCache({ local: { cacheDir: t.path, maxSize: 0 }, s3 }, { metrics, logger: createLogger() });
  cleanups.push(() => cache.tier?.client.close(), t.cleanup);
  return { cache, dir: t.path, metrics };
}

const SUBJECTS: Record<string, () => Promise<Subject>> = {
  async disk() {
    const m = await machine(null);
    return { writer: m.cache.handler, reader: m.cache.handler, settle: async () => {}, dirs: [m.dir] };
  },
  async "tiered, same machine"() {
    const m = await machine(s3cfg(`same-${hex().slice(0, 8)}`));
    return { writer: m.cache.handler, reader: m.cache.handler, settle: async () => void (await m.cache.flush(10_000)), dirs: [m.dir] };
  },
  async "tiered, fresh machine"() {
    const prefix = `fresh-${hex().slice(0, 8)}`;
    const a = await machine(s3cfg(prefix));
    const b = await machine(s3cfg(prefix));
    return { writer: a.cache.handler, reader: b.cache.handler, settle: async () => void (await a.cache.flush(10_000)), dirs: [a.dir, b.dir] };
  },
  async "packs, fresh machine"() {
    return (await packsSubject()).subject;
  },
  async "read-only connection"() {
    const m = await machine(null);
    return { writer: m.cache.connection("rw", 1), reader: m.cache.connection("ro", 2), settle: async () => {}, dirs: [m.dir] };
  },
};

/**
 * Two daemon connections on two machines: the writer acts like a go command
 * (its first action is asked for, missed, then put: that names its pack), and
 * the reader asks for that first action before anything else, as the same
 * go command would, so it reads the writer's pack.
 */
async function packsSubject(): Promise<{ subject: Subject; reader: Metrics; writer: Metrics }> {
  const prefix = `packs-${hex().slice(0, 8)}`;
  const a = await machine(s3cfg(prefix));
  const b = await machine(s3cfg(prefix));
  const wc = a.cache.connection("rw", 1);
  const rc = b.cache.connection("rw", 2);
  let first: string | null = null;
  let readerStarted = false;
  const writer: CacheHandler = {
    get: (x) => wc.get(x),
    put(x, o, n) {
      if (first === null) {
        first = x;
        void wc.get(x);
      }
      return wc.put(x, o, n);
    },
    close: () => wc.close(),
  };
  const reader: CacheHandler = {
    async get(x) {
      if (first && x !== first && !readerStarted) await rc.get(first);
      readerStarted = true;
      return rc.get(x);
    },
    put: (x, o, n) => rc.put(x, o, n),
    close: () => rc.close(),
  };
  const settle = async () => {
    await wc.close();
    await a.cache.flush(10_000);
  };
  return { subject: { writer, reader, settle, dirs: [a.dir, b.dir] }, reader: b.metrics, writer: a.metrics };
}

async function put(h: CacheHandler, action: string, body: Uint8Array, chunk = 65536): Promise<string> {
  const w: PutWriter = h.put(action, sha256(body), body.length);
  for (let i = 0; i < body.length; i += chunk) w.write(body.subarray(i, i + chunk));
  return await w.commit();
}

/** Temp files left anywhere under the store's directories. */
function leftovers(dirs: string[]): string[] {
  const out: string[] = [];
  for (const d of dirs) {
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d, { recursive: true }) as string[]) if (f.endsWith(".tmp")) out.push(join(d, f));
  }
  return out;
}

for (const [name, make] of Object.entries(SUBJECTS)) {
  describe(`store contract: ${name}`, () => {
    test("an unknown action is a miss (null), not an error", async () => {
      const s = await make();
      expect(await s.reader.get(hex())).toBeNull();
    });

    test("a put answers a DiskPath holding exactly the body; a later get is a hit with the same output, size and time", async () => {
      const s = await make();
      const action = hex();
      const body = new TextEncoder().encode(`output of ${action}\n`.repeat(50));
      const diskPath = await put(s.writer, action, body);
      expect(readFileSync(diskPath)).toEqual(Buffer.from(body));
      await s.settle();
      const hit = (await s.reader.get(action))!;
      expect(hit).not.toBeNull();
      expect(hit.outputID).toBe(sha256(body));
      expect(hit.size).toBe(body.length);
      expect(readFileSync(hit.diskPath)).toEqual(Buffer.from(body));
      const written = (await s.writer.get(action))!;
      expect(hit.timeNanos).toBe(written.timeNanos);
    });

    test("a zero-size output is stored and served", async () => {
      const s = await make();
      const action = hex();
      const diskPath = await put(s.writer, action, new Uint8Array(0));
      expect(Bun.file(diskPath).size).toBe(0);
      await s.settle();
      expect(await s.reader.get(action)).toMatchObject({ size: 0, outputID: sha256(new Uint8Array(0)) });
    });

    test("a 3 MiB output written in small chunks arrives whole", async () => {
      const s = await make();
      const action = hex();
      const body = new Uint8Array(3 << 20);
      for (let i = 0; i < body.length; i += 65536) crypto.getRandomValues(body.subarray(i, i + 65536));
      await put(s.writer, action, body, 4093);
      await s.settle();
      const hit = (await s.reader.get(action))!;
      expect(hit.size).toBe(body.length);
      expect(sha256(readFileSync(hit.diskPath))).toBe(sha256(body));
    });

    test("an aborted put leaves no entry and no temp file", async () => {
      const s = await make();
      const action = hex();
      const w = s.writer.put(action, hex(), 100);
      w.write(new Uint8Array(40));
      w.abort();
      await s.settle();
      expect(await s.reader.get(action)).toBeNull();
      expect(leftovers(s.dirs)).toEqual([]);
    });

    test("concurrent gets of one action all get the same answer", async () => {
      const s = await make();
      const action = hex();
      const body = crypto.getRandomValues(new Uint8Array(20_000));
      await put(s.writer, action, body);
      await s.settle();
      const hits = await Promise.all(Array.from({ length: 10 }, () => s.reader.get(action)));
      for (const h of hits) expect(h).toMatchObject({ outputID: sha256(body), size: body.length });
      expect(new Set(hits.map((h) => h!.diskPath)).size).toBe(1);
    });

    test("outputs outlive close (go list -export reads them after the go command ends)", async () => {
      const s = await make();
      const action = hex();
      const body = new TextEncoder().encode("still here");
      const diskPath = await put(s.writer, action, body);
      await s.settle();
      const hit = (await s.reader.get(action))!;
      await s.reader.close();
      expect(readFileSync(diskPath, "utf8")).toBe("still here");
      expect(readFileSync(hit.diskPath, "utf8")).toBe("still here");
    });
  });
}

describe("packs, beyond the contract", () => {
  test("what the writer's connection put comes to the fresh machine from its pack", async () => {
    const { subject, reader, writer } = await packsSubject();
    const actions = Array.from({ length: 5 }, () => hex());
    for (const a of actions) await put(subject.writer, a, new TextEncoder().encode(`output ${a}\n`.repeat(100)));
    await subject.settle();
    expect(writer.get("pack_uploads")).toBe(1);
    for (const a of actions) expect(await subject.reader.get(a)).not.toBeNull();
    expect(reader.get("hits_pack")).toBe(actions.length);
    expect(reader.get("remote_gets")).toBe(0);
  });
});

describe("read-only connection, beyond the contract", () => {
  test("its puts answer a DiskPath with the body, but nobody else ever reads them", async () => {
    const m = await machine(null);
    const ro = m.cache.connection("ro", 7);
    const action = hex();
    const body = new TextEncoder().encode("untrusted output");
    const diskPath = await put(ro, action, body);
    expect(readFileSync(diskPath, "utf8")).toBe("untrusted output");
    expect(diskPath.startsWith(join(m.dir, "gostash-read-only"))).toBe(true);
    expect(await m.cache.connection("rw", 8).get(action)).toBeNull();
    expect(await m.cache.connection("ro", 9).get(action)).toBeNull();
  });
});
