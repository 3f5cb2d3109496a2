// The pack layout (src/store/packs.ts), the segment lander
// (src/store/pack-stream.ts) and the pack file builder (pack-file.ts), on
// a real disk store in a temp dir.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createDiskStore } from "../../src/store/disk.ts";
import { PackFileWriter } from "../../src/store/pack-file.ts";
import { landSegment, type SegmentSink } from "../../src/store/pack-stream.ts";
import { BadHeadError, decodeHead, encodeHead, headObject, MAX_HEAD_MISSES, packObject, segmentsOf, type PackEntry, type PackHead, type PackRef } from "../../src/store/packs.ts";
import { encodeMeta } from "../../src/store/s3-objects.ts";
import { tempDir } from "../helpers/env.ts";

const hex = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
const sha256 = (b: Uint8Array) => new Bun.CryptoHasher("sha256").update(b).digest("hex");

interface Built {
  pack: PackRef;
  bytes: Uint8Array;
  bodies: Map<string, Uint8Array>;
}

/** A pack file built from outputs (compressible and not), read back whole. */
async function buildPack(sizes: number[], compress = true): Promise<Built> {
  const t = tempDir("gostash-packfile-");
  const w = new PackFileWriter(join(t.path, "x.pack"), compress);
  const bodies = new Map<string, Uint8Array>();
  for (const [i, n] of sizes.entries()) {
    const body = i % 2 ? crypto.getRandomValues(new Uint8Array(n)).map((b, j) => (j < 65536 ? b : b ^ j)) : new TextEncoder().encode("x".repeat(n));
    const action = hex();
    bodies.set(action, body);
    await w.add(action, { outputID: sha256(body), size: n, timeNanos: 1_700_000_000_000_000_000n + BigInt(i), encoding: "identity" }, body);
  }
  const pack = await w.finish(Date.now());
  const bytes = readFileSync(w.path);
  w.discard();
  t.cleanup();
  return { pack, bytes, bodies };
}

function head(key: string, packs: PackRef[], misses: string[] = []): PackHead {
  return { key, writtenMs: 1, packs, misses };
}

/** The body as an async stream cut into chunks of the given sizes (cycled). */
async function* chunked(b: Uint8Array, sizes: number[]): AsyncIterable<Uint8Array> {
  for (let off = 0, i = 0; off < b.length; i++) {
    const n = sizes[i % sizes.length]!;
    yield b.subarray(off, off + n);
    off += n;
  }
}

function recordingSink(local = new Set<string>()): SegmentSink & { landed_: Map<string, string>; failed_: string[] } {
  const landed_ = new Map<string, string>();
  const failed_: string[] = [];
  return {
    landed_,
    failed_,
    isLocal: (e: PackEntry) => local.has(e.actionID),
    landed: (e, out) => void landed_.set(e.actionID, out.diskPath),
    failed: (e) => void failed_.push(e.actionID),
  };
}

describe("pack layout", () => {
  test("names: heads by key, packs by their SHA-256", () => {
    const k = hex();
    expect(headObject(k)).toBe(`packs/${k}.head`);
    expect(packObject(k)).toBe(`packs/${k}.pack`);
  });

  test("a head round-trips, keeping metadata fields this version does not know", async () => {
    const { pack, bytes } = await buildPack([10, 2000, 0, 70_000]);
    expect(pack.name).toBe(sha256(bytes));
    pack.entries[1]!.raw["gostash-future"] = "12345";
    const key = hex();
    const back = decodeHead(encodeHead(head(key, [pack])), key);
    expect(back.packs[0]!.name).toBe(pack.name);
    expect(back.packs[0]!.frames).toEqual(pack.frames);
    expect(back.packs[0]!.entries.map((e) => [e.actionID, e.frame, e.offset, e.meta])).toEqual(pack.entries.map((e) => [e.actionID, e.frame, e.offset, e.meta]));
    expect(back.packs[0]!.entries[1]!.raw["gostash-future"]).toBe("12345");
    expect(back.misses).toEqual([]);
    const misses = [hex(), hex()];
    expect(decodeHead(encodeHead(head(key, [pack], misses)), key).misses).toEqual(misses);
  });

  test("refuses heads that are not, that belong to another key, or that describe impossible packs", async () => {
    const { pack } = await buildPack([100, 200, 300, 3 << 20]);
    const key = hex();
    const bad = (p: PackRef) => () => decodeHead(encodeHead(head(key, [p])), key);
    expect(() => decodeHead(new TextEncoder().encode("plain"), key)).toThrow(BadHeadError);
    expect(() => decodeHead(Bun.zstdCompressSync(Buffer.from("gostash-packs 1\n{")), key)).toThrow("not JSON");
    expect(() => decodeHead(encodeHead(head(key, [pack])), hex())).toThrow("written for key");
    const e = pack.entries;
    const f = pack.frames;
    expect(f.length).toBeGreaterThan(1);
    expect(bad({ ...pack, entries: [e[1]!, e[0]!] })).toThrow("overlaps");
    expect(bad({ ...pack, bytes: pack.bytes - 1 })).toThrow("frames end at");
    expect(bad({ ...pack, frames: [f[1]!, f[0]!, ...f.slice(2)] })).toThrow("not where the one before ends");
    expect(bad({ ...pack, frames: [{ ...f[0]!, zstd: false }, ...f.slice(1)] })).toThrow("stored, but");
    expect(bad({ ...pack, frames: [{ ...f[0]!, rawLength: 1 << 30 }, ...f.slice(1)] })).toThrow("larger than any writer makes");
    expect(bad({ ...pack, entries: [{ ...e[0]!, frame: 99 }] })).toThrow("no frame 99");
    expect(bad({ ...pack, entries: [{ ...e[0]!, offset: f[0]!.rawLength }] })).toThrow("past its frame");
    expect(bad({ ...pack, name: "../../x" })).toThrow("not a SHA-256");
    expect(bad({ ...pack, entries: [{ ...e[0]!, actionID: "zz" }] })).toThrow("not an action ID");
    expect(bad({ ...pack, entries: [{ ...e[0]!, raw: { ...e[0]!.raw, "gostash-size": "x" } }] })).toThrow("metadata");
    expect(bad({ ...pack, entries: [{ ...e[0]!, offset: -1 }] })).toThrow("whole number");
    const huge = { ...e[0]!, raw: encodeMeta({ ...e[0]!.meta, size: 1 << 30 }) };
    expect(bad({ ...pack, entries: [huge] })).toThrow("larger than any writer packs");
    expect(() => decodeHead(encodeHead(head(key, [pack], ["../x"])), key)).toThrow("misses: not an action ID");
    expect(() => decodeHead(encodeHead(head(key, [pack], Array.from({ length: MAX_HEAD_MISSES + 1 }, () => hex()))), key)).toThrow("misses: needs a list");
  });

  test("frames grow from 1 MiB to 16 MiB of outputs; segments are whole frames, growing to the target; a pack that fits is fetched whole", async () => {
    const { pack } = await buildPack(Array.from({ length: 64 }, () => 1 << 20), true);
    // Frames of 1, 2, 4, 8 then 16 outputs of 1 MiB (half of them incompressible).
    expect(pack.frames.slice(0, 6).map((f) => f.rawLength >> 20)).toEqual([1, 2, 4, 8, 16, 16]);
    const one = segmentsOf(pack, 1 << 30);
    expect(one.length).toBe(1);
    expect(one[0]!.whole).toBe(true);
    const many = segmentsOf(pack, 2 * pack.frames[3]!.length, pack.frames[0]!.length);
    expect(many.length).toBeGreaterThan(3);
    expect(many[0]!.frames).toEqual([0]);
    expect(many.flatMap((s) => s.frames)).toEqual(pack.frames.map((_, k) => k));
    expect(many.flatMap((s) => s.entries)).toEqual(pack.entries);
    for (const s of many) {
      expect(s.whole).toBe(false);
      expect([s.start, s.end]).toEqual([pack.frames[s.frames[0]!]!.offset, pack.frames[s.frames.at(-1)!]!.offset + pack.frames[s.frames.at(-1)!]!.length]);
    }
  });

  test("without compression, frames are stored as they are", async () => {
    const { pack, bytes, bodies } = await buildPack([1000, 2000], false);
    expect(pack.frames.every((f) => !f.zstd && f.length === f.rawLength)).toBe(true);
    expect(bytes.length).toBe([...bodies.values()].reduce((a, b) => a + b.length, 0));
  });
});

describe("landing a segment", () => {
  for (const cut of [[1], [7, 3], [4096], [1 << 20]]) {
    test(`every output lands verified whatever the chunking (${cut.join(",")})`, async () => {
      const built = await buildPack([0, 1, 513, 4000, 70_000, 200_000, 9, 64 << 10, 1 << 20, 3 << 20]);
      const t = tempDir("gostash-land-");
      const disk = createDiskStore({ dir: t.path });
      const [seg] = segmentsOf(built.pack, 1 << 30);
      const sink = recordingSink();
      let received = 0;
      await landSegment(disk, seg!, { body: chunked(built.bytes, cut), firstByte: 0 }, sink, (n) => (received += n));
      expect(sink.failed_).toEqual([]);
      expect(received).toBe(built.bytes.length);
      for (const [action, body] of built.bodies) expect(readFileSync(sink.landed_.get(action)!)).toEqual(Buffer.from(body));
      t.cleanup();
    });
  }

  test("a range starting mid-pack, local outputs skipped, a bad frame's outputs refused while the rest land", async () => {
    const built = await buildPack([300_000, 400_000, 500_000, 600_000, 700_000, 800_000, 900_000]);
    const segs = segmentsOf(built.pack, 1, 1); // one frame each
    expect(segs.length).toBeGreaterThanOrEqual(3);
    const seg = { ...segs[1]!, frames: [...segs[1]!.frames, ...segs[2]!.frames], end: segs[2]!.end, entries: [...segs[1]!.entries, ...segs[2]!.entries] };
    const bytes = built.bytes.slice(seg.start, seg.end);
    const badFrame = built.pack.frames[segs[2]!.frames[0]!]!;
    bytes[badFrame.offset - seg.start + Math.floor(badFrame.length / 2)]! ^= 0xff;
    const local = segs[1]!.entries[0]!;
    const t = tempDir("gostash-land-");
    const disk = createDiskStore({ dir: t.path });
    const sink = recordingSink(new Set([local.actionID]));
    await landSegment(disk, seg, { body: chunked(bytes, [1000]), firstByte: seg.start }, sink);
    // The damaged frame's outputs that no longer match are refused; any it still holds intact land, verified.
    const damaged = segs[2]!.entries.map((e) => e.actionID);
    expect(sink.failed_.length).toBeGreaterThan(0);
    for (const a of sink.failed_) expect(damaged).toContain(a);
    const landed = [...segs[1]!.entries.slice(1).map((e) => e.actionID), ...damaged.filter((a) => !sink.failed_.includes(a))];
    expect([...sink.landed_.keys()].sort()).toEqual(landed.sort()); // written through the thread pool: any order
    for (const a of landed) expect(sha256(readFileSync(sink.landed_.get(a)!))).toBe(sha256(built.bodies.get(a)!));
    for (const a of sink.failed_) expect(disk.get(a)).toBeNull();
    t.cleanup();
  });

  test("a body that ends early reports the frames that were whole and throws for the rest", async () => {
    const built = await buildPack([1 << 20, 1 << 20, 1 << 20, 1 << 20]);
    const [seg] = segmentsOf(built.pack, 1 << 30);
    const t = tempDir("gostash-land-");
    const disk = createDiskStore({ dir: t.path });
    const sink = recordingSink();
    const last = built.pack.frames.at(-1)!;
    const p = landSegment(disk, seg!, { body: chunked(built.bytes.slice(0, last.offset + 3), [777]), firstByte: 0 }, sink);
    await expect(p).rejects.toThrow("body ended");
    const inLast = built.pack.entries.filter((e) => e.frame === built.pack.frames.length - 1);
    expect(sink.landed_.size).toBe(built.pack.entries.length - inLast.length);
    for (const e of inLast) expect(disk.get(e.actionID)).toBeNull();
    t.cleanup();
  });
});
