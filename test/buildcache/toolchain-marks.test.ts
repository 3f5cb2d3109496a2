// Toolchain marks (src/store/toolchain-marks.ts, src/buildcache/toolchain-mark.ts)
// against versitygw behind the fault proxy: a go command whose toolchain the
// bucket has no mark for answers its local misses without a GET each, and its
// first upload writes the mark; everything else asks the bucket as before.
import { describe, expect, test } from "bun:test";
import type { S3Config } from "../../src/config/config.ts";
import { encodeMark, markObject, markTime, toolchainOf } from "../../src/store/toolchain-marks.ts";
import { coldRun, keys, machine as packMachine, outputs, packWorld, put, warmRun, type Machine, type World } from "./pack-helpers.ts";

const w: World = packWorld();
const GO = "linux-amd64/go1.99.1";
let seq = 0;
const fresh = () => `marks${++seq}-${Date.now()}`;

/** A plugin-mode machine (one go command) whose go command says it is `toolchain`. */
const machine = (prefix: string, toolchain: string | null, over: Partial<S3Config> = {}): Promise<Machine> => packMachine(w, prefix, over, toolchain);

async function markBody(prefix: string, toolchain = GO): Promise<Uint8Array | null> {
  const m = await machine(prefix, null);
  return await m.cache.tier!.client.getBytes(markObject(toolchain));
}

describe("toolchain marks", () => {
  test("a toolchain new to the bucket: misses without a GET each; the first upload writes the mark", async () => {
    const prefix = fresh();
    const outs = outputs(20);
    const a = await machine(prefix, GO);
    w.proxy.resetCounts();
    await coldRun(a.cache.handler, outs);
    expect(a.metrics.get("toolchain_misses")).toBe(20);
    expect(a.metrics.get("toolchain_new")).toBe(1);
    expect(a.metrics.get("remote_gets")).toBe(0);
    // The head (none yet) and the mark: nothing per action.
    expect(w.proxy.counts.GET).toBeLessThanOrEqual(3);
    await a.cache.handler.close();
    expect(a.metrics.get("toolchain_marks_up")).toBe(1);
    expect(await keys(w, prefix)).toContain(markObject(GO));
    expect(Math.abs(markTime((await markBody(prefix))!)! - Date.now())).toBeLessThan(60_000);

    // Same toolchain, no packs: every action is asked for, and hits.
    const b = await machine(prefix, GO, { prefetch: false });
    await warmRun(b.cache.handler, outs);
    expect(b.metrics.get("hits_remote")).toBe(20);
    expect(b.metrics.get("toolchain_misses")).toBe(0);
    expect(b.metrics.get("toolchain_new")).toBe(0);
    // A fresh mark is not written again.
    await put(b.cache.handler, outputs(1)[0]!);
    await b.cache.handler.close();
    expect(b.metrics.get("toolchain_marks_up")).toBe(0);
  });

  test("another toolchain does not ask for what the bucket cannot hold for it; no toolchain asks as before", async () => {
    const prefix = fresh();
    const outs = outputs(10);
    const a = await machine(prefix, GO);
    await coldRun(a.cache.handler, outs);
    await a.cache.handler.close();

    // Real action IDs differ across toolchains; the same ones here show that the mark alone decides.
    const other = await machine(prefix, "linux-arm64/go1.99.1", { prefetch: false });
    for (const o of outs) expect(await other.cache.handler.get(o.action)).toBeNull();
    expect(other.metrics.get("toolchain_misses")).toBe(10);
    expect(other.metrics.get("remote_gets")).toBe(0);

    // A daemon connection (or --no-toolchain-marks) knows no toolchain: per-action GETs, hits.
    const none = await machine(prefix, null, { prefetch: false });
    await warmRun(none.cache.handler, outs);
    expect(none.metrics.get("remote_gets")).toBe(10);
    expect(none.metrics.get("toolchain_misses")).toBe(0);
  });

  test("a mark that cannot be read: the gets ask the bucket as before, and the upload writes the mark", async () => {
    const prefix = fresh();
    const outs = outputs(8);
    const a = await machine(prefix, GO);
    w.proxy.set({ status500: true, onlyPath: /\/toolchains\// });
    try {
      await coldRun(a.cache.handler, outs);
      expect(a.metrics.get("toolchain_mark_errors")).toBeGreaterThan(0);
      expect(a.metrics.get("toolchain_misses")).toBe(0);
      expect(a.metrics.get("remote_gets")).toBe(8);
    } finally {
      w.proxy.reset();
    }
    await a.cache.handler.close();
    expect(a.metrics.get("toolchain_marks_up")).toBe(1);
    expect(await markBody(prefix)).not.toBeNull();
  });

  test("a mark a day old, or one that does not parse, is written again", async () => {
    for (const old of [encodeMark(Date.now() - 25 * 3600_000), new TextEncoder().encode("not a mark\n")]) {
      const prefix = fresh();
      const seed = await machine(prefix, null);
      await seed.cache.tier!.client.put(markObject(GO), old);
      const a = await machine(prefix, GO, { prefetch: false });
      const [o] = outputs(1);
      expect(await a.cache.handler.get(o!.action)).toBeNull();
      expect(a.metrics.get("toolchain_misses")).toBe(0);
      expect(a.metrics.get("remote_gets")).toBe(1);
      await put(a.cache.handler, o!);
      await a.cache.handler.close();
      expect(a.metrics.get("toolchain_marks_up")).toBe(1);
      expect(Math.abs(markTime((await markBody(prefix))!)! - Date.now())).toBeLessThan(60_000);
    }
  });

  test("--read-only uses the mark and never writes one", async () => {
    const prefix = fresh();
    const outs = outputs(5);
    const a = await machine(prefix, GO, { readOnly: true });
    for (const o of outs) expect(await a.cache.handler.get(o.action)).toBeNull();
    expect(a.metrics.get("toolchain_misses")).toBe(5);
    for (const o of outs) await put(a.cache.handler, o);
    await a.cache.handler.close();
    expect(a.metrics.get("toolchain_marks_up")).toBe(0);
    expect(await keys(w, prefix)).toEqual([]);
  });
});

describe("toolchainOf", () => {
  test("the go command's version and platform, made safe for a key; null unless all three are set", () => {
    expect(toolchainOf({ GOVERSION: "go1.26.8", GOOS: "linux", GOARCH: "amd64" })).toBe("linux-amd64/go1.26.8");
    expect(toolchainOf({ GOVERSION: "devel go1.27-abc123 Tue Dec 1 10:00:00 2026 +0000", GOOS: "darwin", GOARCH: "arm64" })).toBe(
      "darwin-arm64/devel_go1.27-abc123_Tue_Dec_1_10_00_00_2026__0000",
    );
    // Go salts its hashes with the version without experiments.
    expect(toolchainOf({ GOVERSION: "go1.26.8 X:rangefunc,aliastypeparams", GOOS: "linux", GOARCH: "amd64" })).toBe("linux-amd64/go1.26.8");
    expect(toolchainOf({ GOVERSION: "devel go1.27-abc123-X:boringcrypto", GOOS: "linux", GOARCH: "amd64" })).toBe("linux-amd64/devel_go1.27-abc123");
    expect(toolchainOf({ GOVERSION: "go1.26.8", GOOS: "linux" })).toBeNull();
    expect(toolchainOf({ GOOS: "linux", GOARCH: "amd64" })).toBeNull();
    expect(toolchainOf({ GOVERSION: " ", GOOS: "linux", GOARCH: "amd64" })).toBeNull();
  });
});
