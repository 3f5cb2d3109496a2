// What a lying or corrupted bucket can make a pack reader allocate
// (src/store/packs.ts, pack-frame.ts): a head may not claim more stored
// bytes for a frame than zstd ever makes of its raw size, and a frame or a
// head is refused before it is decompressed when its zstd header does not
// promise to stay within what is expected (a zstd bomb). Refusals count as
// bad entries and bad heads, exactly as corrupt bytes do.
import { afterEach, describe, expect, spyOn, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createDiskStore } from "../../src/store/disk.ts";
import { PackFileWriter } from "../../src/store/pack-file.ts";
import { landFrame, type EntryResult, type FrameJob } from "../../src/store/pack-frame.ts";
import { zstdDeclaredSize } from "../../src/util/zstd-bounded.ts";
import { BadHeadError, decodeHead, encodeHead, maxStoredFrame, MAX_FRAME_RAW, type PackRef } from "../../src/store/packs.ts";
import { tempDir } from "../helpers/env.ts";
import { BLOCK, rleFrame, undeclared } from "../helpers/zstd.ts";

const hex = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
const sha256 = (b: Uint8Array) => new Bun.CryptoHasher("sha256").update(b).digest("hex");
/** A frame job of one entry holding `raw`, its stored bytes given. */
function job(raw: Uint8Array, stored: Uint8Array, rawLength = raw.length): FrameJob {
  const entry = { actionID: hex(), offset: 0, outputID: sha256(raw), size: raw.length, timeNanos: 1n };
  return { stored, zstd: true, rawLength, what: "test frame", entries: [entry] };
}

function landed(j: FrameJob): EntryResult[] {
  const t = tempDir("gostash-bounds-");
  const results: EntryResult[] = [];
  landFrame(createDiskStore({ dir: t.path }), j, (i, r) => (results[i] = r));
  t.cleanup();
  return results;
}

/** A pack of one frame and no entries, as a head would list it. */
function onePack(frame: { length: number; rawLength: number; zstd: boolean }): PackRef {
  return { name: hex(), bytes: frame.length, writtenMs: 1, frames: [{ offset: 0, ...frame }], entries: [] };
}

let spies: { mockRestore(): void }[] = [];
afterEach(() => {
  for (const s of spies) s.mockRestore();
  spies = [];
});
function spyDecompress() {
  const s = spyOn(Bun, "zstdDecompressSync");
  spies.push(s);
  return s;
}

describe("a frame's stored size", () => {
  test("a head claiming more stored bytes for a frame than zstd ever makes of its raw size is a bad head", () => {
    const key = hex();
    const read = (length: number, rawLength: number) => decodeHead(encodeHead({ key, writtenMs: 1, packs: [onePack({ length, rawLength, zstd: true })], misses: [] }), key);
    // zstd's worst case (ZSTD_compressBound) is believed, from empty frames to the largest.
    for (const r of [0, 1000, BLOCK, 16 << 20, MAX_FRAME_RAW]) expect(read(maxStoredFrame(r), r).packs[0]!.frames[0]!.length).toBe(maxStoredFrame(r));
    expect(maxStoredFrame(0)).toBe(64);
    expect(maxStoredFrame(16 << 20)).toBe((16 << 20) + (64 << 10));
    // One byte more is not, nor a terabyte for a frame of 1 MiB (its body would be read into memory).
    expect(() => read(maxStoredFrame(1 << 20) + 1, 1 << 20)).toThrow(BadHeadError);
    expect(() => read(2 ** 40, 1 << 20)).toThrow("more than zstd ever stores them in");
  });

  test("frames the pack writer makes stay within the bound, and declare their raw size", async () => {
    const t = tempDir("gostash-bounds-");
    const w = new PackFileWriter(join(t.path, "x.pack"), true);
    const sizes = [0, 1, 5000, 300_000, 1 << 20, 3 << 20];
    for (const [i, n] of sizes.entries()) {
      const body = i % 2 ? crypto.getRandomValues(new Uint8Array(Math.min(n, 65536))) : new Uint8Array(n).fill(7);
      await w.add(hex(), { outputID: sha256(body), size: body.length, timeNanos: 1n, encoding: "identity" }, body);
    }
    const pack = await w.finish(1);
    const bytes = readFileSync(w.path);
    w.discard();
    t.cleanup();
    expect(pack.frames.some((f) => f.zstd)).toBe(true);
    for (const f of pack.frames) {
      expect(f.length).toBeLessThanOrEqual(maxStoredFrame(f.rawLength));
      if (f.zstd) expect(zstdDeclaredSize(bytes.subarray(f.offset, f.offset + f.length))).toBe(f.rawLength);
    }
  });
});

describe("zstd bombs", () => {
  test("a frame that declares more than its head's raw length is refused without being decompressed", () => {
    const raw = new Uint8Array(1000);
    const bomb = rleFrame(1 << 30, 1 << 30); // 32 KiB that expand to 1 GiB
    const calls = spyDecompress();
    const [r] = landed(job(raw, bomb));
    expect(r).toMatchObject({ ok: false, bad: true });
    expect(r!.ok ? "" : r!.message).toContain(`declares ${1 << 30} bytes, more than the 1000 expected`);
    expect(calls).not.toHaveBeenCalled();
  });

  test("a frame that does not declare its size is refused, even one holding the right bytes", async () => {
    const raw = new Uint8Array(5000).map((_, i) => i & 255);
    const stored = await undeclared(raw);
    expect(zstdDeclaredSize(stored)).toBeNull();
    expect(Bun.zstdDecompressSync(stored)).toEqual(Buffer.from(raw)); // zstd would decompress it, growing its output as it goes
    const calls = spyDecompress();
    const [r] = landed(job(raw, stored));
    expect(r).toMatchObject({ ok: false, bad: true });
    expect(r!.ok ? "" : r!.message).toContain("does not declare its size");
    expect(calls).not.toHaveBeenCalled();
    // A second frame after a good one counts too.
    expect(landed(job(raw, Buffer.concat([Bun.zstdCompressSync(raw), Buffer.from(stored)])))[0]).toMatchObject({ ok: false, bad: true });
  });

  test("a frame declaring its size truly lands; trailing garbage does not", () => {
    const raw = new Uint8Array(70_000).map((_, i) => (i * 7) & 255);
    expect(landed(job(raw, Bun.zstdCompressSync(raw)))[0]!.ok).toBe(true);
    const skippable = new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 2, 0, 0, 0, 9, 9]);
    expect(landed(job(raw, Buffer.concat([Buffer.from(skippable), Bun.zstdCompressSync(raw)])))[0]!.ok).toBe(true);
    expect(landed(job(raw, Buffer.concat([Bun.zstdCompressSync(raw), Buffer.from("x")])))[0]).toMatchObject({ ok: false, bad: true });
    expect(zstdDeclaredSize(rleFrame(3 * BLOCK + 5, 3 * BLOCK + 5, 1))).toBe(3 * BLOCK + 5);
    expect(Bun.zstdDecompressSync(rleFrame(3 * BLOCK + 5, 3 * BLOCK + 5, 1))).toEqual(Buffer.alloc(3 * BLOCK + 5, 1));
  });

  test("a frame that declares less than it holds is refused by zstd itself at once (what the check relies on)", () => {
    const raw = new Uint8Array(1000);
    // Were its output sized by anything but the declared 1000 bytes, zstd would write 512 MiB first: the peak RSS would show it.
    const peakKiB = process.resourceUsage().maxRSS;
    const [r] = landed(job(raw, rleFrame(512 << 20, 1000)));
    expect(r).toMatchObject({ ok: false, bad: true });
    expect(process.resourceUsage().maxRSS - peakKiB).toBeLessThan(128 << 10);
  });

  test("a head whose zstd header declares more text than a head may hold, or none, is a bad head, not decompressed", async () => {
    const key = hex();
    const calls = spyDecompress();
    expect(() => decodeHead(rleFrame(300 << 20, 300 << 20, 0x20), key)).toThrow(`declares ${300 << 20} bytes, more than`);
    expect(() => decodeHead(rleFrame(1 << 20, null, 0x20), key)).toThrow(BadHeadError);
    expect(() => decodeHead(new TextEncoder().encode("plain"), key)).toThrow(BadHeadError);
    expect(calls).not.toHaveBeenCalled();
    calls.mockRestore();
    // A head as written declares its size and is read.
    const good = encodeHead({ key, writtenMs: 1, packs: [], misses: [] });
    expect(zstdDeclaredSize(good)).toBeGreaterThan(0);
    expect(decodeHead(good, key).key).toBe(key);
    const rewritten = await undeclared(Bun.zstdDecompressSync(good));
    expect(() => decodeHead(rewritten, key)).toThrow("does not declare its size");
  });
});
