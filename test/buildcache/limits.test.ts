// The S3 tier's limits in-process, against a real S3 server (versitygw)
// behind a real fault proxy: --request-timeout, --max-put-size,
// --upload-queue-bytes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { readFileSync } from "node:fs";
import type { S3Config } from "../../src/config/config.ts";
import { createDiskStore } from "../../src/store/disk.ts";
import { createS3Client } from "../../src/s3/client.ts";
import { actionObject } from "../../src/store/s3-objects.ts";
import { createTieredCache, type TieredCache } from "../../src/buildcache/tiered.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { tempDir, setEnv } from "../helpers/env.ts";
import { startFaultProxy, type FaultProxy } from "../helpers/faultproxy.ts";
import { startS3Server, type S3Server } from "../helpers/s3server.ts";

let s3: S3Server;
let restoreEnv = () => {};
let proxy: FaultProxy;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  s3 = await startS3Server();
  // The store finds its credentials the way gostash does: the AWS environment.
  restoreEnv = setEnv(s3.env);
  proxy = await startFaultProxy(s3.endpoint);
}, 60_000);

afterAll(async () => {
  restoreEnv();
  for (const c of cleanups.reverse()) await c();
  await proxy?.stop();
  await s3?.stop();
});

interface Machine {
  cache: TieredCache;
  metrics: Metrics;
}

function machine(over: Partial<S3Config>): Machine {
  const t = tempDir("gostash-store-limits-");
  const metrics = new Metrics();
  const disk = createDiskStore({ dir: t.path });
  const cfg: S3Config = {
    bucket: s3.bucket,
    region: s3.region,
    prefix: "",
    endpoint: proxy.endpoint,
    pathStyle: true,
    minUploadSize: 0,
    uploadConcurrency: 1,
    concurrency: 4,
    readOnly: false,
    flushTimeoutMs: 20_000,
    compress: false,
    timeoutMs: 10_000,
    ...over,
  };
  const logger = createLogger();
  const cache = createTieredCache({ disk, client: createS3Client(cfg, { metrics, logger }), s3: cfg, metrics, logger });
  cleanups.push(async () => {
    await cache.close();
    t.cleanup();
  });
  return { cache, metrics };
}

const hex = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
const sha256 = (b: Uint8Array) => new Bun.CryptoHasher("sha256").update(b).digest("hex");
const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));

async function put(m: Machine, action: string, body: Uint8Array): Promise<string> {
  const w = m.cache.put(action, sha256(body), body.length);
  w.write(body);
  return await w.commit();
}

async function inBucket(action: string): Promise<boolean> {
  try {
    await s3.client().send(new HeadObjectCommand({ Bucket: s3.bucket, Key: actionObject(action) }));
    return true;
  } catch {
    return false;
  }
}

describe("S3 tier limits", () => {
  test("--request-timeout: a get the bucket is slow to serve is a counted miss; the download lands for the next get", async () => {
    const writer = machine({});
    const action = hex();
    const body = random(5000);
    await put(writer, action, body);
    expect((await writer.cache.flush(20_000)).left).toBe(0);
    expect(await inBucket(action)).toBe(true);

    const reader = machine({ requestTimeoutMs: 200 });
    proxy.set({ latencyMs: 1500, only: "GET" });
    try {
      expect(await reader.cache.get(action)).toBeNull();
      expect(reader.metrics.get("request_timeouts")).toBe(1);
      expect(reader.metrics.get("misses")).toBe(1);
      // The download went on; once landed it is a local hit, no request needed.
      const end = Date.now() + 20_000;
      while (reader.metrics.get("remote_gets") < 1 || reader.metrics.get("bytes_down") < body.length) {
        if (Date.now() > end) throw new Error("the download never finished");
        await Bun.sleep(20);
      }
      // bytes_down is counted in the same synchronous step that commits the entry.
      const hit = reader.cache.get(action);
      expect(hit).not.toBeInstanceOf(Promise);
      expect(readFileSync((hit as { diskPath: string }).diskPath)).toEqual(Buffer.from(body));
    } finally {
      proxy.reset();
    }
  }, 60_000);

  test("--max-put-size: a larger output is answered with a good DiskPath but never uploaded; a smaller one is", async () => {
    const m = machine({ maxPutSize: 4096 });
    const big = hex();
    const small = hex();
    const bigBody = random(10_000);
    const path = await put(m, big, bigBody);
    expect(readFileSync(path)).toEqual(Buffer.from(bigBody));
    await put(m, small, random(1000));
    expect((await m.cache.flush(20_000)).left).toBe(0);
    expect(await inBucket(big)).toBe(false);
    expect(await inBucket(small)).toBe(true);
    expect(m.metrics.get("puts_over_limit")).toBe(1);
    expect(m.metrics.get("uploads")).toBe(1);
    // Still a local hit.
    expect((m.cache.get(big) as { size: number }).size).toBe(10_000);
  }, 60_000);

  test("--upload-queue-bytes: uploads beyond the byte budget (waiting or running) are dropped and counted, never waited for", async () => {
    const m = machine({ uploadQueueBytes: 10_000 });
    proxy.set({ latencyMs: 500, only: "PUT" });
    try {
      const actions = [hex(), hex(), hex()];
      // The first (6000 bytes) is being uploaded, slowly; the next two do not fit beside it.
      for (const a of actions) await put(m, a, random(6000));
      expect(m.metrics.get("upload_drops_bytes")).toBe(2);
      expect(m.metrics.get("upload_drops")).toBe(2);
      expect(m.metrics.get("upload_queue_bytes")).toBe(6000);
      expect((await m.cache.flush(20_000)).left).toBe(0);
      expect(m.metrics.get("upload_queue_bytes")).toBe(0);
      expect([await inBucket(actions[0]!), await inBucket(actions[1]!), await inBucket(actions[2]!)]).toEqual([true, false, false]);
      // Room again once it drained.
      const later = hex();
      await put(m, later, random(6000));
      expect((await m.cache.flush(20_000)).left).toBe(0);
      expect(await inBucket(later)).toBe(true);
    } finally {
      proxy.reset();
    }
  }, 60_000);
});
