// Landing one frame of a pack (packs.ts) into the local store: decompress
// it, cut it into outputs, check each against its output ID (SHA-256) and
// size exactly like a per-action object (s3-objects.ts), and write the good
// ones with the store's synchronous bulk writes (disk-whole.ts: output
// before entry). A bad output is reported and skipped; the others
// are good or bad on their own. A frame that does not decompress, or not to
// the length its head says, fails every output in it; so does one whose
// zstd header does not promise that length, before it is decompressed
// (zstdDecompressAtMost: a small frame may expand to gigabytes).
//
// Synchronous on purpose: it runs on the landing worker's thread
// (pack-land-worker.ts), where blocking costs nobody anything and a
// thread-pool round trip per file would cost about as much as the write.
// Its input and output are plain data, so they cross the thread boundary
// as they are.

import type { DiskStore, StoredOutput } from "./disk.ts";
import { verifyOutput } from "./s3-objects.ts";

/** One output of a frame, as the head describes it. */
export interface FrameEntryJob {
  actionID: string;
  /** Where its bytes start in the frame's raw bytes; it is `size` long. */
  offset: number;
  outputID: string;
  size: number;
  timeNanos: bigint;
}

/** A frame as it came from the pack, with the entries of it to land. */
export interface FrameJob {
  stored: Uint8Array;
  zstd: boolean;
  rawLength: number;
  /** Names the frame in errors ("s3: pack <name>: frame 3"). */
  what: string;
  entries: FrameEntryJob[];
}

/** What became of one entry. `bad`: its bytes are wrong (the pack's fault), else the local disk failed. */
export type EntryResult = { ok: true; out: StoredOutput } | { ok: false; bad: boolean; message: string; code?: string };

/** Lands every entry of a frame, telling each(i, result) per entry, in order, as soon as it is known. */
export function landFrame(disk: DiskStore, job: FrameJob, each: (i: number, r: EntryResult) => void): void {
  let raw: Uint8Array;
  try {
    raw = decodeFrame(job);
  } catch (err) {
    const message = (err as Error).message;
    job.entries.forEach((_, i) => each(i, { ok: false, bad: true, message }));
    return;
  }
  job.entries.forEach((e, i) => each(i, landEntry(disk, e, raw.subarray(e.offset, e.offset + e.size), job.what)));
}

function decodeFrame(job: FrameJob): Uint8Array {
  if (!job.zstd) return job.stored;
  let raw: Uint8Array;
  try {
    raw = zstdDecompressAtMost(job.stored, job.rawLength);
  } catch (err) {
    throw new Error(`${job.what}: does not decompress: ${(err as Error)?.message ?? err}`);
  }
  if (raw.length !== job.rawLength) throw new Error(`${job.what}: decompresses to ${raw.length} bytes, its head says ${job.rawLength}`);
  return raw;
}

function landEntry(disk: DiskStore, e: FrameEntryJob, out: Uint8Array, what: string): EntryResult {
  try {
    verifyOutput(e, out, (why: string): never => {
      throw new Error(`${what}: entry ${e.actionID}: ${why}`);
    });
  } catch (err) {
    return { ok: false, bad: true, message: (err as Error).message };
  }
  try {
    return { ok: true, out: disk.putWhole(e.actionID, e.outputID, out, e.timeNanos) };
  } catch (err) {
    return { ok: false, bad: false, message: `disk store: ${(err as Error)?.message ?? err}`, code: (err as NodeJS.ErrnoException).code };
  }
}

/**
 * Decompresses zstd bytes that may expand to at most `max` bytes, refusing
 * them before any output exists otherwise. Bun.zstdDecompressSync sizes its
 * output by the content sizes the frames declare when every frame declares
 * one (ZSTD_findDecompressedSize), and zstd fails rather than write past
 * that (measured with Bun 1.4.5: a frame declaring 1 KiB of its 200 MiB is
 * refused in 0.2 ms; test/store/pack-bounds.test.ts keeps it so); a frame
 * declaring none is decompressed into an output that grows without bound.
 * So the declared sizes are read first, from the headers (no copy, no
 * decompression): every writer of packs and heads declares them (one-shot
 * and node:zlib compression both do).
 */
export function zstdDecompressAtMost(bytes: Uint8Array, max: number): Uint8Array {
  const declared = zstdDeclaredSize(bytes);
  if (declared === null) throw new Error("zstd: a frame does not declare its size, or is not whole");
  if (declared > max) throw new Error(`zstd: declares ${declared} bytes, more than the ${max} expected`);
  return Bun.zstdDecompressSync(bytes);
}

const ZSTD_MAGIC = 0xfd2fb528;
/** Skippable frames' magic numbers are 0x184d2a50 to 0x184d2a5f; they hold no content. */
const SKIPPABLE_MAGIC_HIGH = 0x184d2a5;

/**
 * The content size the zstd frames of `bytes` declare together, counted as
 * zstd counts it (frames back to back, skippable ones adding nothing), or
 * null when one of them declares none or the bytes are not whole frames.
 * Reads frame and block headers only (RFC 8878).
 */
export function zstdDeclaredSize(bytes: Uint8Array): number | null {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  let total = 0;
  while (at < v.byteLength) {
    if (at + 8 > v.byteLength) return null;
    const magic = v.getUint32(at, true);
    if (magic >>> 4 === SKIPPABLE_MAGIC_HIGH) {
      at += 8 + v.getUint32(at + 4, true);
      continue;
    }
    const frame = magic === ZSTD_MAGIC ? zstdFrame(v, at + 4) : null;
    if (!frame) return null;
    total += frame.size;
    at = frame.end;
  }
  return at === v.byteLength && bytes.length > 0 ? total : null;
}

/** The declared size and the end of the zstd frame whose header starts at `at` (after its magic number). */
function zstdFrame(v: DataView, at: number): { size: number; end: number } | null {
  const fhd = v.getUint8(at);
  if (fhd & 0x08) return null; // a reserved bit
  const single = (fhd >> 5) & 1;
  const sizeBytes = [single, 2, 4, 8][fhd >> 6]!;
  if (sizeBytes === 0) return null; // no content size in the header
  const p = at + 1 + (single ? 0 : 1) + [0, 1, 2, 4][fhd & 3]!;
  if (p + sizeBytes > v.byteLength) return null;
  const blocksEnd = zstdBlocksEnd(v, p + sizeBytes);
  if (blocksEnd === null) return null;
  const end = blocksEnd + (fhd & 0x04 ? 4 : 0); // a content checksum follows
  return end <= v.byteLength ? { size: contentSize(v, p, sizeBytes), end } : null;
}

/** A Frame_Content_Size field of n bytes (little-endian; the 2-byte form counts from 256). */
function contentSize(v: DataView, p: number, n: number): number {
  if (n === 1) return v.getUint8(p);
  if (n === 2) return v.getUint16(p, true) + 256;
  if (n === 4) return v.getUint32(p, true);
  return v.getUint32(p, true) + v.getUint32(p + 4, true) * 2 ** 32;
}

/** Where the blocks starting at `at` end, their last one included. */
function zstdBlocksEnd(v: DataView, at: number): number | null {
  for (let last = 0; !last; ) {
    if (at + 3 > v.byteLength) return null;
    const h = v.getUint8(at) | (v.getUint8(at + 1) << 8) | (v.getUint8(at + 2) << 16);
    last = h & 1;
    const type = (h >> 1) & 3;
    if (type === 3) return null; // reserved
    // An RLE block stores one byte; raw and compressed ones, their size.
    at += 3 + (type === 1 ? 1 : h >>> 3);
  }
  return at;
}
