// Landing pack frames (src/store/pack-lander.ts, pack-land-worker.ts,
// pack-frame.ts, disk-whole.ts) on real worker threads into a real store:
// every entry lands verified in Go's layout; a worker that dies loses
// nothing but speed; a full disk sends outputs to the overflow directory
// and says so on the main thread; shared outputs are written once.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseEntry } from "../../src/store/disk-layout.ts";
import { createDiskStore } from "../../src/store/disk.ts";
import type { EntryResult, FrameJob } from "../../src/store/pack-frame.ts";
import { createFrameLander } from "../../src/store/pack-lander.ts";
import { tempDir } from "../helpers/env.ts";

const tmp = tempDir("gostash-lander-");
const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts.reverse()) Bun.spawnSync(["umount", "-l", m]);
  tmp.cleanup();
});

const hex = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
const sha256 = (b: Uint8Array) => new Bun.CryptoHasher("sha256").update(b).digest("hex");
let n = 0;
const fresh = (name: string) => join(tmp.path, `${name}-${++n}`);

/** A zstd frame of outputs (some sharing one output), with its entries. */
function frame(sizes: number[], o: { corrupt?: number } = {}): { job: FrameJob; bodies: Uint8Array[] } {
  const bodies = sizes.map((s, i) => (s === 0 ? new Uint8Array(0) : new Uint8Array(s).map((_, j) => (i * 31 + j * 7) & 255)));
  const raw = Buffer.concat(bodies);
  let offset = 0;
  const entries = bodies.map((b, i) => {
    const e = { actionID: hex(), offset, outputID: sha256(b), size: b.length, timeNanos: 1_700_000_000_000_000_000n + BigInt(i) };
    offset += b.length;
    return e;
  });
  if (o.corrupt !== undefined) raw[entries[o.corrupt]!.offset]! ^= 1;
  return { job: { stored: Bun.zstdCompressSync(raw), zstd: true, rawLength: raw.length, what: "test frame", entries }, bodies };
}

async function land(lander: ReturnType<typeof createFrameLander>, disk: ReturnType<typeof createDiskStore>, job: FrameJob): Promise<EntryResult[]> {
  const results: EntryResult[] = [];
  await lander.land(disk, job, (i, r) => {
    expect(results[i]).toBeUndefined();
    results[i] = r;
  });
  return results;
}

/** The entry file of an action, parsed, and its output's bytes. */
function stored(dir: string, actionID: string): { outputID: string; size: number; bytes: Uint8Array } {
  const buf = readFileSync(join(dir, actionID.slice(0, 2), `${actionID}-a`));
  const e = parseEntry(buf, buf.length, actionID)!;
  expect(e).not.toBeNull();
  return { outputID: e.outputID, size: e.size, bytes: readFileSync(join(dir, e.outputID.slice(0, 2), `${e.outputID}-d`)) };
}

describe("pack frame landing", () => {
  test("frames land on worker threads, verified, in Go's layout; a bad output is refused alone; the store counts what it grew by", async () => {
    const dir = fresh("cache");
    const disk = createDiskStore({ dir });
    const lander = createFrameLander({ threads: 2 });
    const frames = [frame([0, 10, 0, 70_000, 0]), frame([5_000_000, 1, 2]), frame([300, 400, 500], { corrupt: 1 })];
    const all = await Promise.all(frames.map((f) => land(lander, disk, f.job)));
    for (const [k, f] of frames.entries()) {
      for (const [i, e] of f.job.entries.entries()) {
        const r = all[k]![i]!;
        if (k === 2 && i === 1) {
          expect(r).toMatchObject({ ok: false, bad: true });
          expect((r as { message: string }).message).toContain(`test frame: entry ${e.actionID}: SHA-256 of the body is`);
          expect(existsSync(join(dir, e.actionID.slice(0, 2), `${e.actionID}-a`))).toBe(false);
          continue;
        }
        expect(r).toMatchObject({ ok: true, out: { outputID: e.outputID, size: e.size, diskPath: join(dir, e.outputID.slice(0, 2), `${e.outputID}-d`) } });
        const s = stored(dir, e.actionID);
        expect(s.outputID).toBe(e.outputID);
        expect(Buffer.compare(s.bytes, f.bodies[i]!)).toBe(0);
        expect(disk.get(e.actionID)?.outputID).toBe(e.outputID);
      }
    }
    // No temp files left; bytes written counted on the main thread's store.
    for (const sub of readdirSync(dir)) expect(readdirSync(join(dir, sub)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    expect(disk.bytesWritten).toBeGreaterThan(5_000_000);
  });

  test("a frame that does not decompress fails every entry in it as bad bytes", async () => {
    const disk = createDiskStore({ dir: fresh("cache") });
    const { job } = frame([100, 200]);
    job.stored = job.stored.slice(0, 10);
    const rs = await land(createFrameLander({ threads: 1 }), disk, job);
    expect(rs.map((r) => r.ok || r.bad)).toEqual([true, true]);
    expect(rs.every((r) => !r.ok && r.message.includes("test frame: does not decompress"))).toBe(true);
  });

  test("a worker that dies: the entries it did not report fail (not as bad bytes), later frames land on the main thread", async () => {
    const dir = fresh("cache");
    const disk = createDiskStore({ dir });
    const lander = createFrameLander({ threads: 1, workerUrl: new URL("../helpers/dying-land-worker.ts", import.meta.url).href });
    const first = frame([10, 20, 30]);
    const rs = await land(lander, disk, first.job);
    expect(rs[0]).toEqual({ ok: false, bad: false, message: "first entry: not landed" });
    for (const r of rs.slice(1)) expect(r).toMatchObject({ ok: false, bad: false, message: expect.stringContaining("pack landing worker:") });
    const second = frame([40, 50]);
    const rs2 = await land(lander, disk, second.job);
    expect(rs2.every((r) => r.ok)).toBe(true);
    for (const [i, e] of second.job.entries.entries()) expect(Buffer.compare(stored(dir, e.actionID).bytes, second.bodies[i]!)).toBe(0);
  });

  test("a full disk: outputs still land (in the overflow directory), the main thread's store hears of it, no partial file is left", async () => {
    const dir = fresh("full");
    mkdirSync(dir);
    const m = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir], { stderr: "pipe" });
    if (m.exitCode !== 0) throw new Error(`cannot mount a tmpfs for the full-disk test: ${m.stderr.toString()}`);
    mounts.push(dir);
    const troubles: string[] = [];
    const overflowDir = fresh("overflow");
    const disk = createDiskStore({ dir, overflowDir, onTrouble: (e) => troubles.push((e as NodeJS.ErrnoException).code ?? e.message) });
    const f = frame([20_000, 30_000, 200_000, 10]);
    const rs = await land(createFrameLander({ threads: 1 }), disk, f.job);
    expect(rs.filter((r) => !r.ok)).toEqual([]);
    expect(troubles).toContain("ENOSPC");
    for (const [i, r] of rs.entries()) {
      const out = (r as { out: { diskPath: string } }).out;
      expect(Buffer.compare(readFileSync(out.diskPath), f.bodies[i]!)).toBe(0);
    }
    expect((rs[2] as { out: { diskPath: string } }).out.diskPath.startsWith(overflowDir)).toBe(true);
    // Whatever is in the cache directory is whole: every entry's output has its size and hash.
    for (const sub of readdirSync(dir).filter((d) => /^[0-9a-f]{2}$/.test(d))) {
      for (const name of readdirSync(join(dir, sub))) {
        const p = join(dir, sub, name);
        if (name.endsWith("-d")) expect(sha256(readFileSync(p))).toBe(name.slice(0, -2));
        expect(name.endsWith(".tmp")).toBe(false);
      }
    }
  });
});

describe("whole outputs (disk-whole.ts)", () => {
  test("an output already there with its size is kept, not rewritten; one of the wrong size is replaced whole", () => {
    const dir = fresh("cache");
    const disk = createDiskStore({ dir });
    const body = new TextEncoder().encode("hello, shared output");
    const id = sha256(body);
    const a = disk.putWhole(hex(), id, body, 1n);
    const ino = statSync(a.diskPath).ino;
    const b = disk.putWhole(hex(), id, body, 2n);
    expect(b.diskPath).toBe(a.diskPath);
    expect(statSync(b.diskPath).ino).toBe(ino);
    // A cut file (an interrupted write) under the output's name.
    writeFileSync(a.diskPath, body.subarray(0, 5));
    const action = hex();
    const c = disk.putWhole(action, id, body, 3n);
    expect(Buffer.compare(readFileSync(c.diskPath), body)).toBe(0);
    expect(disk.get(action)).toMatchObject({ outputID: id, size: body.length, timeNanos: 3n });
    // The empty output of many actions: one file, every entry a hit.
    const empty = sha256(new Uint8Array(0));
    const actions = [hex(), hex(), hex()];
    for (const x of actions) disk.putWhole(x, empty, new Uint8Array(0), 4n);
    for (const x of actions) expect(disk.get(x)).toMatchObject({ outputID: empty, size: 0 });
  });
});
