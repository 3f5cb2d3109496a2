// zstd bytes from a bucket, decompressed only when their frame headers
// promise no more than the caller expects: a few KiB of zstd can expand to
// gigabytes, and decompressing first and checking the length after (as
// every reader here did) lets a lying or corrupt object exhaust memory.
// Used by pack frames (pack-frame.ts), pack heads (packs.ts) and
// per-action objects (s3-objects.ts).

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
