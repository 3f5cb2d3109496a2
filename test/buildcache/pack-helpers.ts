// Shared by the pack tests: machines (openBuildCache on a temp dir, one
// bucket prefix, through the fault proxy), go-command-like runs, and looks
// into the bucket (versitygw's posix backend keeps objects as plain files).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect } from "bun:test";
import { openBuildCache, type BuildCache } from "../../src/buildcache/open.ts";
import type { CacheHandler } from "../../src/cacheprog/session.ts";
import type { S3Config } from "../../src/config/config.ts";
import { decodeHead, type PackHead } from "../../src/store/packs.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { setEnv, tempDir } from "../helpers/env.ts";
import { startFaultProxy, type FaultProxy } from "../helpers/faultproxy.ts";
import { startS3Server, type S3Server } from "../helpers/s3server.ts";

export const hex = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
export const sha256 = (b: Uint8Array) => new Bun.CryptoHasher("sha256").update(b).digest("hex");

export function textBody(n: number, seed = hex()): Uint8Array {
  return new TextEncoder().encode(`package ${seed} // compressible\n`.repeat(Math.ceil(n / 60)).slice(0, n));
}

export function randomBody(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
}

export interface World {
  s3: S3Server;
  proxy: FaultProxy;
  cleanups: (() => unknown)[];
}

/**
 * The world of one test file: versitygw and the fault proxy in front of
 * it, started before its tests and stopped (with every cleanup the tests
 * registered) after them. Its fields are set once beforeAll has run.
 */
export function packWorld(): World {
  const w = { cleanups: [] } as unknown as World;
  let restoreEnv = () => {};
  beforeAll(async () => {
    w.s3 = await startS3Server();
    restoreEnv = setEnv(w.s3.env);
    w.proxy = await startFaultProxy(w.s3.endpoint);
  }, 60_000);
  afterAll(async () => {
    restoreEnv();
    for (const c of w.cleanups.reverse()) await c();
    await w.proxy?.stop();
    await w.s3?.stop();
  });
  return w;
}

export interface Machine {
  cache: BuildCache;
  metrics: Metrics;
  dir: string;
}

export function s3cfg(w: World, prefix: string, over: Partial<S3Config> = {}): S3Config {
  return {
    bucket: w.s3.bucket,
    region: "us-east-1",
    prefix,
    endpoint: w.proxy.endpoint,
    pathStyle: true,
    minUploadSize: 0,
    uploadConcurrency: 4,
    concurrency: 8,
    readOnly: false,
    flushTimeoutMs: 20_000,
    compress: true,
    timeoutMs: 3_000,
    prefetch: true,
    ...over,
  };
}

/** A machine with an empty disk: its handler is one go command (plugin mode), of `toolchain` if given (toolchain marks). */
export async function machine(w: World, prefix: string, over: Partial<S3Config> = {}, toolchain: string | null = null): Promise<Machine> {
  const t = tempDir("gostash-packs-");
  const metrics = new Metrics();
  const cache = await openBuildCache(
    { local: { cacheDir: t.path, maxSize: 0 }, s3: s3cfg(w, prefix, over), singleCommand: true, toolchain },
    { metrics, logger: createLogger() },
  );
  w.cleanups.push(() => cache.tier?.client.close(), t.cleanup);
  return { cache, metrics, dir: t.path };
}

/** The next go command on a machine's disk (plugin mode: a new process, nothing known in memory). */
export async function nextCommand(w: World, m: Machine, prefix: string, over: Partial<S3Config> = {}): Promise<Machine> {
  const metrics = new Metrics();
  const cache = await openBuildCache({ local: { cacheDir: m.dir, maxSize: 0 }, s3: s3cfg(w, prefix, over), singleCommand: true }, { metrics, logger: createLogger() });
  w.cleanups.push(() => cache.tier?.client.close());
  return { cache, metrics, dir: m.dir };
}

/** What one go command does, roughly: asks its first actions, then puts or gets the rest. */
export interface Output {
  action: string;
  body: Uint8Array;
}

export function outputs(n: number, size: (i: number) => number = () => 3000): Output[] {
  return Array.from({ length: n }, (_, i) => ({ action: hex(), body: i % 5 === 4 ? randomBody(size(i)) : textBody(size(i)) }));
}

export async function put(h: CacheHandler, o: Output): Promise<string> {
  const w = h.put(o.action, sha256(o.body), o.body.length);
  for (let i = 0; i < o.body.length; i += 65536) w.write(o.body.subarray(i, i + 65536));
  return await w.commit();
}

/** A cold command: every get misses, then every output is put (in order). */
export async function coldRun(h: CacheHandler, outs: Output[]): Promise<void> {
  for (const o of outs) expect(await h.get(o.action)).toBeNull();
  for (const o of outs) await put(h, o);
}

/** A warm command: every get, one at a time, must be a hit with the right bytes. */
export async function warmRun(h: CacheHandler, outs: Output[]): Promise<void> {
  for (const o of outs) expectHit(await h.get(o.action), o);
}

export function expectHit(hit: { outputID: string; size: number; diskPath: string } | null, o: Output): void {
  expect(hit).not.toBeNull();
  expect(hit!.outputID).toBe(sha256(o.body));
  expect(hit!.size).toBe(o.body.length);
  expect(sha256(readFileSync(hit!.diskPath))).toBe(sha256(o.body));
}

/** Object keys in the bucket under a prefix. */
export async function keys(w: World, prefix: string): Promise<string[]> {
  return (await w.s3.listKeys()).filter((k) => k.startsWith(`${prefix}/`)).map((k) => k.slice(prefix.length + 1));
}

export async function packNames(w: World, prefix: string): Promise<string[]> {
  return (await keys(w, prefix)).filter((k) => k.endsWith(".pack"));
}

export function objectPath(w: World, prefix: string, name: string): string {
  return join(w.s3.dataDir, w.s3.bucket, prefix, name);
}

export function readHeadFile(w: World, prefix: string, key: string): PackHead {
  return decodeHead(readFileSync(objectPath(w, prefix, `packs/${key}.head`)), key);
}

/** Output files in a Go-format cache all hash to their names. */
export function outputsIntact(dir: string): number {
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
