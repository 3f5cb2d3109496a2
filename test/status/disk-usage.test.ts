// The local cache's size against --max-size, and its trims, as the status
// page and /metrics show them: a real disk store filled through the build
// cache, its size measured, kept current by puts, and re-based by a trim
// that the --max-size cap forces.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openBuildCache } from "../../src/buildcache/open.ts";
import type { CacheHandler } from "../../src/cacheprog/session.ts";
import { ENTRY_SIZE } from "../../src/store/disk.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { tempDir } from "../helpers/env.ts";

const dirs: { cleanup(): void }[] = [];
afterAll(() => dirs.forEach((d) => d.cleanup()));

const hex = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");

function put(h: CacheHandler, size: number): void {
  const body = crypto.getRandomValues(new Uint8Array(size));
  const w = h.put(hex(), new Bun.CryptoHasher("sha256").update(body).digest("hex"), size);
  w.write(body);
  w.commit();
}

/** What is really on disk: every -a and -d file under <xx>/, counted independently of the code under test. */
/** Gives every cache file an mtime `hours` old, as if last used then. */
function usedHoursAgo(dir: string, hours: number): void {
  const t = new Date(Date.now() - hours * 3600_000);
  for (const sub of readdirSync(dir).filter((d) => /^[0-9a-f]{2}$/.test(d))) {
    for (const f of readdirSync(join(dir, sub))) utimesSync(join(dir, sub, f), t, t);
  }
}

function onDisk(dir: string): number {
  let n = 0;
  for (const sub of readdirSync(dir)) {
    if (!/^[0-9a-f]{2}$/.test(sub)) continue;
    for (const f of readdirSync(join(dir, sub))) if (/-[ad]$/.test(f)) n += statSync(join(dir, sub, f)).size;
  }
  return n;
}

async function cacheWith(maxSize: number) {
  const t = tempDir("gostash-disk-usage-");
  dirs.push(t);
  const metrics = new Metrics();
  const cache = await openBuildCache({ local: { cacheDir: t.path, maxSize }, s3: null }, { metrics, logger: createLogger() });
  return { cache, metrics, dir: t.path };
}

describe("disk_bytes, disk_max_bytes and trims", () => {
  test("measured once, then every put adds its output and entry; no gauge before the measure", async () => {
    const { cache, metrics, dir } = await cacheWith(0);
    for (let i = 0; i < 20; i++) put(cache.handler, 1000 + i);
    expect(metrics.gauges.has("disk_bytes")).toBe(false);
    expect(metrics.gauges.has("disk_max_bytes")).toBe(false);
    await cache.usage.measure();
    expect(metrics.get("disk_bytes")).toBe(onDisk(dir));
    put(cache.handler, 5000);
    expect(metrics.get("disk_bytes")).toBe(onDisk(dir));
    expect(onDisk(dir)).toBe(20 * ENTRY_SIZE + (20 * 1000 + 190) + 5000 + ENTRY_SIZE);
  });

  test("a trim over --max-size is counted with what it removed, and the estimate follows it", async () => {
    const max = 64 * 1024;
    const { cache, metrics, dir } = await cacheWith(max);
    await cache.usage.measure();
    expect(metrics.get("disk_max_bytes")).toBe(max);
    for (let i = 0; i < 40; i++) put(cache.handler, 4000);
    usedHoursAgo(dir, 2); // the cap never evicts what was used within the hour (store/disk-trim.ts)
    const before = onDisk(dir);
    expect(before).toBeGreaterThan(max);
    cache.trim();
    expect(metrics.get("trims")).toBe(1);
    expect(metrics.get("trim_removed_bytes")).toBe(before - onDisk(dir));
    expect(metrics.get("trim_removed_files")).toBeGreaterThan(0);
    expect(metrics.get("disk_bytes")).toBe(onDisk(dir));
    expect(onDisk(dir)).toBeLessThanOrEqual(max);
    put(cache.handler, 100);
    expect(metrics.get("disk_bytes")).toBe(onDisk(dir));
  });

  test("a trim that is not due counts nothing", async () => {
    const { cache, metrics } = await cacheWith(1 << 30);
    cache.trim(); // the first trim of a new directory runs (Go's daily trim)
    const trims = metrics.get("trims");
    cache.trim();
    expect(metrics.get("trims")).toBe(trims);
  });

  test("the daily trim also removes pack head copies a day old (store/head-copies.ts); one that is not due leaves them", async () => {
    const { cache, dir } = await cacheWith(1 << 30);
    const copy = () => {
      const heads = join(dir, "gostash-packs", "heads", "0123456789abcdef");
      mkdirSync(heads, { recursive: true });
      const path = join(heads, `${"ab".repeat(32)}.head`);
      writeFileSync(path, "a head");
      const old = new Date(Date.now() - 2 * 24 * 3600_000);
      utimesSync(path, old, old);
      return path;
    };
    const first = copy();
    cache.trim();
    expect(existsSync(first)).toBe(false);
    const second = copy();
    cache.trim(); // not due again today
    expect(existsSync(second)).toBe(true);
  });
});
