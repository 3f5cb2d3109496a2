// The pack layout (src/store/packs.ts), the segment lander
// (src/store/pack-stream.ts) and the pack file builder (pack-file.ts), on
// a real disk store in a temp dir.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createDiskStore } from "../../src/store/disk.ts";
import { EncodedSpool, PackFileWriter } from "../../src/store/pack-file.ts";
import { landSegment, type SegmentSink } from "../../src/store/pack-stream.ts";
import { BadHeadError, decodeHead, encodeHead, headObject, packObject, segmentsOf, type PackEntry, type PackHead, type PackRef } from "../../src/store/packs.ts";
import { encodeBody, encodeMeta } from "../../src/store/s3-objects.ts";
import { tempDir } from "../helpers/env.ts";

const hex = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
const sha256 = (b: Uint8Array) => new Bun.CryptoHasher("sha256").update(b).digest("hex");

interface Built {
  pack: PackRef;
  bytes: Uint8Array;
  bodies: Map<string, Uint8Array>;
}

/** A pack file built from outputs (compressible and not), read back whole. */
async function buildPack(sizes: number[]): Promise<Built> {
  const t = tempDir("gostash-packfile-");
  const w = new PackFileWriter(join(t.path, "x.pack"));
  const bodies = new Map<string, Uint8Array>();
  for (const [i, n] of sizes.entries()) {
    const out = i % 2 ? crypto.getRandomValues(new Uint8Array(Math.min(n, 65536))) : new TextEncoder().encode("x".repeat(n));
    const body = out.length === n ? out : new Uint8Array(n).fill(7);
    const action = hex();
    bodies.set(action, body);
    const enc = await encodeBody(body, true);
    w.append(action, { outputID: sha256(body), size: n, timeNanos: 1_700_000_000_000_000_000n + BigInt(i), encoding: enc.encoding }, enc.body);
  }
  const pack = w.finish(Date.now());
  const bytes = readFileSync(w.path);
  w.discard();
  t.cleanup();
  return { pack, bytes, bodies };
}

function head(key: string, packs: PackRef[]): PackHead {
  return { key, writtenMs: 1, packs };
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
    pack.entries[1]!.raw["gostash-cost"] = "12345";
    const key = hex();
    const back = decodeHead(encodeHead(head(key, [pack])), key);
    expect(back.packs[0]!.name).toBe(pack.name);
    expect(back.packs[0]!.entries.map((e) => [e.actionID, e.offset, e.length, e.meta])).toEqual(pack.entries.map((e) => [e.actionID, e.offset, e.length, e.meta]));
    expect(back.packs[0]!.entries[1]!.raw["gostash-cost"]).toBe("12345");
  });

  test("refuses heads that are not, that belong to another key, or that describe impossible packs", async () => {
    const { pack } = await buildPack([100, 200, 300]);
    const key = hex();
    const bad = (p: PackRef) => () => decodeHead(encodeHead(head(key, [p])), key);
    expect(() => decodeHead(new TextEncoder().encode("plain"), key)).toThrow(BadHeadError);
    expect(() => decodeHead(Bun.zstdCompressSync(Buffer.from("gostash-packs 1\n{")), key)).toThrow("not JSON");
    expect(() => decodeHead(encodeHead(head(key, [pack])), hex())).toThrow("written for key");
    const e = pack.entries;
    expect(bad({ ...pack, entries: [e[1]!, e[0]!] })).toThrow("overlaps");
    expect(bad({ ...pack, bytes: e[2]!.offset })).toThrow("past the pack");
    expect(bad({ ...pack, name: "../../x" })).toThrow("not a SHA-256");
    expect(bad({ ...pack, entries: [{ ...e[0]!, actionID: "zz" }] })).toThrow("not an action ID");
    expect(bad({ ...pack, entries: [{ ...e[0]!, raw: { ...e[0]!.raw, "gostash-size": "x" } }] })).toThrow("metadata");
    expect(bad({ ...pack, entries: [{ ...e[0]!, offset: -1 }] })).toThrow("whole number");
    const identity = { ...e[0]!, raw: encodeMeta({ ...e[0]!.meta, encoding: "identity", size: e[0]!.length + 1 }) };
    expect(bad({ ...pack, entries: [identity] })).toThrow("stored for a");
    const bomb = { ...e[0]!, raw: encodeMeta({ ...e[0]!.meta, encoding: "zstd", size: 1 << 30 }) };
    expect(bad({ ...pack, entries: [bomb] })).toThrow("larger than any writer packs");
  });

  test("segments: whole entries, about the target size each; a pack that fits is fetched whole", async () => {
    const { pack } = await buildPack(Array.from({ length: 20 }, () => 5000));
    const one = segmentsOf(pack, 1 << 20);
    expect(one.length).toBe(1);
    expect(one[0]!.whole).toBe(true);
    const many = segmentsOf(pack, 3 * pack.entries[1]!.length);
    expect(many.length).toBeGreaterThan(3);
    expect(many.flatMap((s) => s.entries)).toEqual(pack.entries);
    for (const s of many) expect(s.whole).toBe(false);
    expect(many.map((s) => [s.start, s.end])).toEqual(many.map((s) => [s.entries[0]!.offset, s.entries.at(-1)!.offset + s.entries.at(-1)!.length]));
    // Growing: one entry, then two, then four, then up to the target (entries of 100 bytes).
    const even: PackRef = { ...pack, bytes: 2000, entries: Array.from({ length: 20 }, (_, i) => ({ ...pack.entries[0]!, offset: i * 100, length: 100 })) };
    const growing = segmentsOf(even, 400, 100);
    expect(growing.map((s) => s.entries.length)).toEqual([1, 2, 4, 4, 4, 4, 1]);
    expect(growing.flatMap((s) => s.entries)).toEqual(even.entries);
  });
});

describe("landing a segment", () => {
  for (const cut of [[1], [7, 3], [4096], [1 << 20]]) {
    test(`every entry lands verified whatever the chunking (${cut.join(",")})`, async () => {
      const built = await buildPack([0, 1, 513, 4000, 70_000, 200_000, 9, 64 << 10]);
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

  test("a range starting mid-pack, local entries skipped, a bad entry refused while the rest land", async () => {
    const built = await buildPack([3000, 4000, 5000, 6000, 7000]);
    const segs = segmentsOf(built.pack, 9000);
    const seg = segs[1]!;
    const bytes = built.bytes.slice(seg.start, seg.end);
    const [first, second] = seg.entries;
    bytes[second!.offset - seg.start + 5]! ^= 1;
    const t = tempDir("gostash-land-");
    const disk = createDiskStore({ dir: t.path });
    const sink = recordingSink(new Set(seg.entries.slice(2).map((e) => e.actionID)));
    await landSegment(disk, seg, { body: chunked(bytes, [1000]), firstByte: seg.start }, sink);
    expect([...sink.landed_.keys()]).toEqual([first!.actionID]);
    expect(sink.failed_).toEqual([second!.actionID]);
    expect(disk.get(second!.actionID)).toBeNull();
    t.cleanup();
  });

  test("a body that ends early reports the entries that were whole and throws for the rest", async () => {
    const built = await buildPack([3000, 4000, 5000]);
    const [seg] = segmentsOf(built.pack, 1 << 30);
    const t = tempDir("gostash-land-");
    const disk = createDiskStore({ dir: t.path });
    const sink = recordingSink();
    const cutAt = built.pack.entries[2]!.offset + 3;
    const p = landSegment(disk, seg!, { body: chunked(built.bytes.slice(0, cutAt), [777]), firstByte: 0 }, sink);
    await expect(p).rejects.toThrow("body ended");
    expect(sink.landed_.size).toBe(2);
    expect(disk.get(built.pack.entries[2]!.actionID)).toBeNull();
    t.cleanup();
  });
});

describe("the encoded-body spool", () => {
  test("gives back a kept body only for the same output, and keeps no more than its limit", async () => {
    const t = tempDir("gostash-spool-");
    const spool = new EncodedSpool(join(t.path, "s.spool"), 10_000);
    const a = hex();
    const body = crypto.getRandomValues(new Uint8Array(6000));
    const meta = { outputID: sha256(body), size: 6000, timeNanos: 5n, encoding: "identity" as const };
    expect(spool.add(a, meta, body)).toBe(true);
    expect(spool.add(hex(), meta, body)).toBe(false); // over the limit
    expect(spool.take(a, meta.outputID)).toEqual({ meta, body });
    expect(spool.take(a, hex())).toBeNull();
    spool.close();
    t.cleanup();
  });
});
