// Per-command records for the status page's "go commands served", made by
// the build cache's daemon connections (openBuildCache().connection): the
// real local disk and the real tier over a real bucket (versitygw), so a
// local hit is the disk's answer and a bucket hit the tier's.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CommandsLog } from "../../src/buildcache/commands-log.ts";
import { openBuildCache, type BuildCache } from "../../src/buildcache/open.ts";
import type { CacheHandler } from "../../src/cacheprog/session.ts";
import type { S3Config } from "../../src/config/config.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { setEnv, tempDir } from "../helpers/env.ts";
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

const hex = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");

function s3cfg(prefix: string): S3Config {
  return {
    bucket: s3.bucket, region: "us-east-1", prefix, endpoint: s3.endpoint, pathStyle: true, minUploadSize: 0,
    uploadConcurrency: 2, concurrency: 4, readOnly: false, flushTimeoutMs: 10_000, compress: true, timeoutMs: 5_000,
  };
}

/** A daemon's build cache on a fresh disk; with a bucket when prefix is given. */
async function machine(prefix: string | null): Promise<BuildCache> {
  const t = tempDir("gostash-commands-log-");
  const cache = await openBuildCache({ local: { cacheDir: t.path, maxSize: 0 }, s3: prefix === null ? null : s3cfg(prefix) }, { metrics: new Metrics(), logger: createLogger() });
  cleanups.push(() => cache.tier?.client.close(), t.cleanup);
  return cache;
}

/** A put as the go command makes it: the output ID is the body's SHA-256 (the bucket checks it). */
async function put(h: CacheHandler, action: string, body: Uint8Array): Promise<void> {
  const w = h.put(action, new Bun.CryptoHasher("sha256").update(body).digest("hex"), body.length);
  w.write(body);
  await w.commit();
}

describe("one record per go command, from the daemon's connections", () => {
  test("gets by tier (disk at once, bucket after a wait), misses, puts and bytes; ended by close", async () => {
    const prefix = `cmds-${hex().slice(0, 8)}`;
    const writer = await machine(prefix);
    const reader = await machine(prefix);
    const a = hex();
    const body = new Uint8Array(3000).fill(7);

    const first = writer.connection("rw", 11);
    await put(first, a, body);
    await first.close();
    await writer.flush(10_000);

    const second = reader.connection("rw", 12, { command: "go test ./..." });
    expect(await second.get(a)).not.toBeNull(); // from the bucket: a promise
    const local = second.get(a); // now on this disk: answered at once
    expect(local instanceof Promise).toBe(false);
    expect(local).not.toBeNull();
    expect(await second.get(hex())).toBeNull();
    const running = reader.commands.recent();
    expect(running).toHaveLength(1);
    expect(running[0]).toMatchObject({ id: 12, access: "rw", command: "go test ./...", endedAt: null, gets: 3, hitsLocal: 1, hitsRemote: 1, misses: 1, bytesHit: 6000, puts: 0 });
    expect(reader.commands.open).toBe(1);
    await second.close();

    const [done] = reader.commands.recent();
    expect(done!.endedAt).not.toBeNull();
    expect(done!.endedAt!).toBeGreaterThanOrEqual(done!.startedAt);
    expect(reader.commands.open).toBe(0);
    expect(writer.commands.recent()).toEqual([expect.objectContaining({ id: 11, command: null, gets: 0, puts: 1, bytesPut: 3000 })]);
  });

  test("a connection that asks nothing makes no record; read-only connections are marked so; an aborted put is not counted", async () => {
    const cache = await machine(null);
    await cache.connection("rw", 1).close();
    expect(cache.commands.recent()).toEqual([]);
    const ro = cache.connection("ro", 2);
    const w = ro.put(hex(), hex(), 10);
    w.write(new Uint8Array(4));
    w.abort();
    await ro.close();
    expect(cache.commands.recent()).toEqual([expect.objectContaining({ id: 2, access: "ro", puts: 0, bytesPut: 0 })]);
  });

  test("a local-only cache stays synchronous through the record (stdio's blocking reads rely on it)", async () => {
    const cache = await machine(null);
    const log = new CommandsLog();
    expect(log.track("rw", 1, null, cache.handler).readMayBlock?.()).toBe(true);
  });
});

describe("CommandsLog", () => {
  test("keeps the running commands and the last `keep` finished ones, newest first", async () => {
    let now = 1000;
    const log = new CommandsLog(3, () => now);
    const handler: CacheHandler = { get: () => null, put: () => ({ write() {}, commit: () => "", abort() {} }), close() {} };
    const conns = [1, 2, 3, 4, 5].map((id) => {
      now += 10;
      const h = log.track("rw", id, null, handler);
      h.get("x");
      log.count({ kind: "miss", actionID: "x", conn: id });
      return h;
    });
    for (const h of conns.slice(0, 4)) await h.close();
    expect(log.recent().map((r) => [r.id, r.endedAt === null])).toEqual([[5, true], [4, false], [3, false], [2, false]]);
    // Records handed out are copies: the page cannot change the log.
    log.recent()[0]!.gets = 99;
    expect(log.recent()[0]!.gets).toBe(1);
    // Events of finished or unknown connections, and of plugin mode (no connection), change nothing.
    log.count({ kind: "miss", actionID: "y", conn: 1 });
    log.count({ kind: "miss", actionID: "y", conn: 42 });
    log.count({ kind: "miss", actionID: "y" });
    expect(log.recent().map((r) => r.gets)).toEqual([1, 1, 1, 1]);
  });

  test("time saved appears once a hit had a recorded cost, in seconds", () => {
    const log = new CommandsLog();
    const handler: CacheHandler = { get: () => null, put: () => ({ write() {}, commit: () => "", abort() {} }), close() {} };
    log.track("rw", 7, null, handler).get("a");
    log.count({ kind: "hit", actionID: "a", size: 10, costMs: undefined, remote: false, conn: 7 });
    expect(log.recent()[0]!.timeSavedSeconds).toBeUndefined();
    log.count({ kind: "hit", actionID: "b", size: 10, costMs: 1500, remote: true, conn: 7 });
    expect(log.recent()[0]).toMatchObject({ gets: 2, hitsLocal: 1, hitsRemote: 1, timeSavedSeconds: 1.5 });
  });
});
