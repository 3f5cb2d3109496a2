// zstd bytes built by hand for the tests of bounded decompression
// (src/util/zstd-bounded.ts): bombs that cost nothing to build, and frames
// that do not declare their size.
import { createZstdCompress } from "node:zlib";

export const BLOCK = 128 << 10;

/**
 * A zstd frame of `size` zero bytes in RLE blocks (4 stored bytes per 128
 * KiB), declaring `declared` bytes in its header (null: none), with a
 * 128 KiB window: a bomb that costs nothing to build.
 */
export function rleFrame(size: number, declared: number | null, byte = 0): Uint8Array {
  const blocks = Math.max(1, Math.ceil(size / BLOCK));
  const head = declared === null ? [0x00, 0x38] : [0xc0, 0x38, ...u64(declared)]; // descriptor, window 2^17
  const out = new Uint8Array(4 + head.length + 4 * blocks);
  new DataView(out.buffer).setUint32(0, 0xfd2fb528, true);
  out.set(head, 4);
  for (let i = 0, at = 4 + head.length; i < blocks; i++, at += 4) {
    const n = Math.min(BLOCK, size - i * BLOCK);
    const h = (i === blocks - 1 ? 1 : 0) | (1 << 1) | (n << 3); // last?, RLE, size
    out.set([h & 255, (h >> 8) & 255, (h >> 16) & 255, byte], at);
  }
  return out;
}

function u64(n: number): number[] {
  return Array.from({ length: 8 }, (_, i) => Math.floor(n / 2 ** (8 * i)) & 255);
}

/** Bytes compressed by a stream written in pieces: a frame that does not declare its size. */
export async function undeclared(raw: Uint8Array): Promise<Uint8Array> {
  const z = createZstdCompress();
  const parts: Buffer[] = [];
  z.on("data", (d: Buffer) => parts.push(d));
  const end = new Promise((r) => z.on("end", r));
  for (let at = 0; at < raw.length; at += 1000) z.write(raw.subarray(at, at + 1000));
  z.end();
  await end;
  return Buffer.concat(parts);
}

