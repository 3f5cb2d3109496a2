// The tiered cache in-process: real disk stores in temp dirs, a real S3
// server (versitygw), faults injected by a real proxy in between.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { S3Config } from "../../src/config/config.ts";
import { createDiskStore } from "../../src/store/disk.ts";
import { createS3Client } from "../../src/s3/client.ts";
import { actionObject } from "../../src/store/s3-objects.ts";
import { createTieredCache, type TieredCache } from "../../src/buildcache/tiered.ts";
import { Breaker } from "../../src/util/breaker.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { tempDir, setEnv } from "../helpers/env.ts";
import { startFaultProxy, type FaultProxy } from "../helpers/faultproxy.ts";
import { startS3Server, type S3Server } from "../helpers/s3server.ts";

let s3: S3Server;
let restoreEnv = () => {};
let proxy: FaultProxy;
const cleanups: (() => void | Promise<void>)[] = [];
const logger = createLogger({});

function hex(n = 32): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(n))).toString("hex");
}
function sha256(b: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(b).digest("hex");
}

interface Machine {
  cache: TieredCache;
  metrics: Metrics;
  dir: string;
}

function machine(over: Partial<S3Config> = {}, extra: { queueCapacity?: number; breaker?: Breaker } = {}): Machine {
  const t = tempDir("gostash-tiered-");
  cleanups.push(t.cleanup);
  const metrics = new Metrics();
  const disk = createDiskStore({ dir: t.path });
  const s3cfg: S3Config = {
    bucket: s3.bucket,
    region: "us-east-1",
    prefix: "",
    endpoint: proxy.endpoint,
    pathStyle: true,
    minUploadSize: 0,
    uploadConcurrency: 4,
    concurrency: 8,
    readOnly: false,
    flushTimeoutMs: 10_000,
    compress: true,
    timeoutMs: 2_000,
    ...over,
  };
  const client = createS3Client(s3cfg, { metrics, logger, breaker: extra.breaker, queueCapacity: extra.queueCapacity });
  const cache = createTieredCache({ disk, client, s3: s3cfg, metrics, logger });
  cleanups.push(() => cache.close());
  return { cache, metrics, dir: t.path };
}

async function put(m: Machine, action: string, body: Uint8Array): Promise<{ outputID: string; diskPath: string }> {
  const outputID = sha256(body);
  const w = m.cache.put(action, outputID, body.length);
  if (body.length) w.write(body);
  const diskPath = await w.commit();
  return { outputID, diskPath };
}

function randomBody(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
}

function textBody(n: number): Uint8Array {
  return new TextEncoder().encode("package main // compressible\n".repeat(Math.ceil(n / 29)).slice(0, n));
}

/** Every output file in a Go-format cache dir holds bytes hashing to its name. */
function outputsIntact(dir: string): number {
  let n = 0;
  for (const sub of readdirSync(dir)) {
    if (!/^[0-9a-f]{2}$/.test(sub)) continue;
    for (const name of readdirSync(join(dir, sub))) {
      if (!name.endsWith("-d")) continue;
      expect(sha256(readFileSync(join(dir, sub, name)))).toBe(name.slice(0, 64));
      n++;
    }
  }
  return n;
}

async function exists(action: string): Promise<boolean> {
  try {
    await s3.client().send(new HeadObjectCommand({ Bucket: s3.bucket, Key: actionObject(action) }));
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  s3 = await startS3Server();
  restoreEnv = setEnv(s3.env);
  proxy = await startFaultProxy(s3.endpoint);
}, 60_000);

afterAll(async () => {
  restoreEnv();
  for (const c of cleanups.reverse()) await c();
  await proxy?.stop();
  await s3?.stop();
});

describe("tiered cache", () => {
  test("A puts and uploads in the background; B gets it with one GET, verified, into its own disk", async () => {
    const a = machine();
    const b = machine();
    const action = hex();
    const body = textBody(100_000);
    const { outputID, diskPath } = await put(a, action, body);
    // The put was answered from the local write.
    expect(readFileSync(diskPath)).toEqual(Buffer.from(body));
    expect(await a.cache.flush(10_000)).toEqual({ left: 0 });
    expect(a.metrics.get("uploads")).toBe(1);
    expect(a.metrics.get("bytes_up")).toBeLessThan(body.length); // compressed
    expect(await exists(action)).toBe(true);

    proxy.resetCounts();
    const hit = await b.cache.get(action);
    expect(hit).not.toBeNull();
    expect(hit!.outputID).toBe(outputID);
    expect(hit!.size).toBe(body.length);
    expect(hit!.diskPath.startsWith(b.dir)).toBe(true);
    expect(readFileSync(hit!.diskPath)).toEqual(Buffer.from(body));
    expect(proxy.counts.GET).toBe(1);
    expect(proxy.requests).toBe(1);
    expect(b.metrics.get("hits_remote")).toBe(1);
    // Now local: no more requests.
    const again = b.cache.get(action);
    expect(again instanceof Promise).toBe(false);
    expect((again as { diskPath: string }).diskPath).toBe(hit!.diskPath);
    expect(proxy.requests).toBe(1);
    // B does not upload what it downloaded.
    await b.cache.flush(5_000);
    expect(b.metrics.get("uploads")).toBe(0);
  });

  test("an upload sends the bytes its put was given: the output file is not read back (go clean -cache right after the put loses nothing)", async () => {
    const a = machine({ uploadConcurrency: 1 });
    const b = machine();
    const action = hex();
    const body = textBody(200_000);
    // One upload at a time, and the first one slow: the second waits in the queue.
    proxy.set({ latencyMs: 300 });
    try {
      await put(a, hex(), textBody(1000));
      const w = a.cache.put(action, sha256(body), body.length);
      for (let i = 0; i < body.length; i += 65536) w.write(body.slice(i, i + 65536));
      rmSync(await w.commit()); // before its upload starts
      expect(a.metrics.get("uploads")).toBe(0);
      expect(await a.cache.flush(10_000)).toEqual({ left: 0 });
    } finally {
      proxy.reset();
    }
    expect(a.metrics.get("uploads")).toBe(2);
    expect(a.metrics.get("upload_errors")).toBe(0);
    const hit = await b.cache.get(action);
    expect(sha256(readFileSync(hit!.diskPath))).toBe(sha256(body));
  });

  test("incompressible and empty outputs round-trip too", async () => {
    const a = machine();
    const b = machine();
    const x = hex();
    const y = hex();
    const rnd = randomBody(300_000);
    await put(a, x, rnd);
    await put(a, y, new Uint8Array(0));
    await a.cache.flush(10_000);
    expect(a.metrics.get("uploads")).toBe(2);
    const hx = await b.cache.get(x);
    const hy = await b.cache.get(y);
    expect(readFileSync(hx!.diskPath)).toEqual(Buffer.from(rnd));
    expect(hy!.size).toBe(0);
    expect(readFileSync(hy!.diskPath).length).toBe(0);
  });

  test("concurrent gets of one action share one download", async () => {
    const a = machine();
    const b = machine();
    const action = hex();
    await put(a, action, randomBody(500_000));
    await a.cache.flush(10_000);
    proxy.resetCounts();
    proxy.set({ latencyMs: 100 });
    try {
      const hits = await Promise.all(Array.from({ length: 8 }, () => b.cache.get(action)));
      for (const h of hits) expect(h?.diskPath).toBe(hits[0]!.diskPath);
      expect(proxy.counts.GET).toBe(1);
      expect(b.metrics.get("hits_remote")).toBe(8);
    } finally {
      proxy.reset();
    }
  });

  test("an object whose bytes were altered is a miss, counted, never served", async () => {
    const a = machine({ compress: false });
    const b = machine();
    const action = hex();
    const body = randomBody(50_000);
    await put(a, action, body);
    await a.cache.flush(10_000);
    const file = join(s3.dataDir, s3.bucket, actionObject(action));
    const bytes = readFileSync(file);
    bytes[1000]! ^= 0xff;
    writeFileSync(file, bytes);
    expect(await b.cache.get(action)).toBeNull();
    expect(b.metrics.get("integrity_failures")).toBe(1);
    expect(b.metrics.get("hits_remote")).toBe(0);
    expect(b.metrics.get("misses")).toBe(1);
    expect(outputsIntact(b.dir)).toBe(0);
    expect(existsSync(join(b.dir, action.slice(0, 2), `${action}-a`))).toBe(false);
  });

  test("bodies corrupted or cut in transit are misses; nothing wrong lands on disk", async () => {
    const a = machine();
    const actions = [hex(), hex(), hex()];
    for (const act of actions) await put(a, act, textBody(80_000 + actions.indexOf(act)));
    await put(a, hex(), randomBody(70_000));
    await a.cache.flush(10_000);
    for (const fault of [{ corruptBody: true }, { cutBody: true }] as const) {
      const b = machine();
      proxy.set({ ...fault, only: "GET" });
      try {
        for (const act of actions) expect(await b.cache.get(act)).toBeNull();
      } finally {
        proxy.reset();
      }
      expect(b.metrics.get("hits_remote")).toBe(0);
      expect(b.metrics.get("integrity_failures") + b.metrics.get("remote_errors")).toBe(actions.length);
      expect(outputsIntact(b.dir)).toBe(0);
      // With the fault gone, the same machine gets them.
      for (const act of actions) expect(await b.cache.get(act)).not.toBeNull();
      expect(outputsIntact(b.dir)).toBe(actions.length);
    }
  });

  test("server down: misses, then the breaker stops calling it; it recovers later", async () => {
    let now = 1_000_000;
    const metrics = { trips: 0 };
    const breaker = new Breaker({ threshold: 3, cooldownMs: 1_000, now: () => now, onTrip: () => metrics.trips++ });
    const b = machine({}, { breaker });
    const a = machine();
    const action = hex();
    await put(a, action, textBody(1000));
    await a.cache.flush(10_000);
    proxy.set({ down: true });
    try {
      for (let i = 0; i < 3; i++) expect(await b.cache.get(hex())).toBeNull();
      expect(b.metrics.get("remote_errors")).toBe(3);
      expect(breaker.state).toBe("open");
      expect(metrics.trips).toBe(1);
      // While open, gets do not even try.
      const before = b.metrics.get("remote_gets");
      for (let i = 0; i < 5; i++) expect(await b.cache.get(hex())).toBeNull();
      expect(b.metrics.get("remote_gets")).toBe(before);
      expect(b.metrics.get("remote_skipped")).toBe(5);
    } finally {
      proxy.reset();
    }
    now += 1_001; // cooldown over: one trial goes out and closes the breaker
    expect(await b.cache.get(action)).not.toBeNull();
    expect(breaker.state).toBe("closed");
  });

  test("500s and a hanging server are misses within the timeout", async () => {
    const b = machine({ timeoutMs: 300 });
    for (const fault of [{ status500: true }, { hang: true }] as const) {
      proxy.set(fault);
      try {
        expect(await b.cache.get(hex())).toBeNull();
      } finally {
        proxy.reset();
      }
    }
    expect(b.metrics.get("remote_errors_http")).toBe(1);
    expect(b.metrics.get("remote_errors_timeout")).toBe(1);
  });

  test("--read-only never writes; --min-upload-size keeps small outputs local", async () => {
    proxy.resetCounts();
    const ro = machine({ readOnly: true });
    const roAction = hex();
    await put(ro, roAction, textBody(10_000));
    await ro.cache.close();
    expect(proxy.counts.PUT ?? 0).toBe(0);
    expect(await exists(roAction)).toBe(false);

    const m = machine({ minUploadSize: 4096 });
    const small = hex();
    const big = hex();
    await put(m, small, textBody(100));
    await put(m, big, textBody(10_000));
    await m.cache.flush(10_000);
    expect(await exists(small)).toBe(false);
    expect(await exists(big)).toBe(true);
    expect(m.metrics.get("uploads")).toBe(1);
  });

  test("the same action is uploaded once per run", async () => {
    const m = machine();
    const action = hex();
    const body = textBody(5000);
    proxy.resetCounts();
    for (let i = 0; i < 3; i++) await put(m, action, body);
    await m.cache.flush(10_000);
    expect(proxy.counts.PUT).toBe(1);
  });

  test("a put is answered while uploads are stuck; a full queue drops; close reports what was left", async () => {
    const m = machine({ uploadConcurrency: 1, flushTimeoutMs: 200, timeoutMs: 5_000 }, { queueCapacity: 2 });
    proxy.set({ hang: true, only: "PUT" });
    try {
      for (let i = 0; i < 5; i++) {
        const { diskPath } = await put(m, hex(), textBody(2000 + i));
        expect(existsSync(diskPath)).toBe(true);
      }
      // 1 running, 2 waiting, 2 dropped.
      expect(m.cache.client.uploads.inFlight).toBe(1);
      expect(m.metrics.get("upload_queue_depth")).toBe(2);
      expect(m.metrics.get("upload_drops")).toBe(2);
      expect(await m.cache.flush(100)).toEqual({ left: 3 });
      await m.cache.close();
      expect(m.metrics.get("upload_left")).toBe(3);
    } finally {
      proxy.reset();
    }
  });
});

describe("breaker", () => {
  test("opens after threshold failures, half-opens after the cooldown, doubles it on a failed trial", () => {
    let now = 0;
    const b = new Breaker({ threshold: 2, cooldownMs: 100, maxCooldownMs: 250, now: () => now });
    expect(b.allow()).toBe(true);
    b.failure();
    expect(b.state).toBe("closed");
    b.failure();
    expect(b.state).toBe("open");
    expect(b.allow()).toBe(false);
    now = 100;
    expect(b.state).toBe("half-open");
    expect(b.allow()).toBe(true);
    expect(b.allow()).toBe(false); // one trial at a time
    b.failure();
    expect(b.state).toBe("open");
    now = 299;
    expect(b.allow()).toBe(false); // cooldown doubled to 200
    now = 300;
    expect(b.allow()).toBe(true);
    b.success();
    expect(b.state).toBe("closed");
    b.failure();
    expect(b.state).toBe("closed"); // the count restarted
  });
});
