// The module proxy's one zip reader: where a zip's central directory is,
// what it lists, and the bytes of one entry. Module zips are validated from
// the directory alone (validate.ts: names and sizes, read from the stored
// file without reading all of it) and hashed from every entry's content
// (dirhash.ts, bytes in memory). Bytes are read through `ReadAt`, so the
// same code reads a file or a buffer.
//
// The layout (APPNOTE.TXT; little-endian):
//
//   [local header + data]*  central directory  [zip64 end record, zip64 locator]  end record
//
//   end record (EOCD)   22 bytes + comment, so within the last 22 + 65535 bytes:
//                       sig 0x06054b50, +10 entries (u16), +12 directory size (u32),
//                       +16 directory offset (u32), +20 comment length (u16)
//   zip64 locator       the 20 bytes right before the EOCD, when one of its
//                       fields is saturated (0xffff, 0xffffffff): sig 0x07064b50,
//                       +8 offset of the zip64 end record (u64)
//   zip64 end record    56 bytes: sig 0x06064b50, +32 entries, +40 directory size,
//                       +48 directory offset (u64 each)
//   directory header    46 bytes + name + extra + comment: sig 0x02014b50,
//                       +10 method, +20 compressed size, +24 size, +28 name length,
//                       +30 extra length, +32 comment length, +42 local header offset;
//                       saturated sizes and offset are in the extra field 0x0001
//                       (size, compressed size, offset: only the saturated ones, in that order)
//   local header        30 bytes + name + extra, then the data: sig 0x04034b50,
//                       +26 name length, +28 extra length
//
// Anything that does not add up is a ValidationError: the proxy refuses the
// zip, and `mod import` rejects it.

import { inflateRawSync } from "node:zlib";
import type { FileHandle } from "node:fs/promises";
import { ValidationError } from "./validation-error.ts";

/** Reads `length` bytes at `offset` (fewer at the end of the data). */
export type ReadAt = (offset: number, length: number) => Promise<Uint8Array> | Uint8Array;

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflate. */
  method: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

interface Directory {
  count: number;
  size: number;
  offset: number;
}

const EOCD_SIG = 0x06054b50;
const EOCD64_LOC_SIG = 0x07064b50;
const EOCD64_SIG = 0x06064b50;
const DIR_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
const EOCD_LEN = 22;
const LOCATOR_LEN = 20;
const EOCD64_LEN = 56;
const DIR_HEADER_LEN = 46;
const LOCAL_HEADER_LEN = 30;
/** The end record with the longest comment, and the zip64 locator before it. */
const MAX_TAIL = EOCD_LEN + 0xffff + LOCATOR_LEN;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;

function buf(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

export function bytesReader(data: Uint8Array): ReadAt {
  return (offset, length) => data.subarray(offset, offset + length);
}

export function fileReader(fh: FileHandle): ReadAt {
  return async (offset, length) => {
    const b = Buffer.alloc(length);
    const { bytesRead } = await fh.read(b, 0, length, offset);
    return b.subarray(0, bytesRead);
  };
}

/** The offset in `tail` of the last end record whose comment fits, or -1. */
function findEnd(tail: Buffer): number {
  for (let i = tail.length - EOCD_LEN; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD_SIG && i + EOCD_LEN + tail.readUInt16LE(i + 20) <= tail.length) return i;
  }
  return -1;
}

async function zip64Directory(read: ReadAt, tail: Buffer, eocd: number, size: number): Promise<Directory> {
  const loc = eocd - LOCATOR_LEN;
  if (loc < 0 || tail.readUInt32LE(loc) !== EOCD64_LOC_SIG) throw new ValidationError("zip64 locator missing");
  const at = Number(tail.readBigUInt64LE(loc + 8));
  if (at + EOCD64_LEN > size) throw new ValidationError("bad zip64 end record");
  const rec = buf(await read(at, EOCD64_LEN));
  if (rec.length < EOCD64_LEN || rec.readUInt32LE(0) !== EOCD64_SIG) throw new ValidationError("bad zip64 end record");
  return { count: Number(rec.readBigUInt64LE(32)), size: Number(rec.readBigUInt64LE(40)), offset: Number(rec.readBigUInt64LE(48)) };
}

async function locateDirectory(read: ReadAt, size: number): Promise<Directory> {
  if (size < EOCD_LEN) throw new ValidationError("not a zip file (too short)");
  const tailLen = Math.min(size, MAX_TAIL);
  const tail = buf(await read(size - tailLen, tailLen));
  const eocd = findEnd(tail);
  if (eocd < 0) throw new ValidationError("not a zip file (no end of central directory)");
  const dir = { count: tail.readUInt16LE(eocd + 10), size: tail.readUInt32LE(eocd + 12), offset: tail.readUInt32LE(eocd + 16) };
  const saturated = dir.count === U16_MAX || dir.size === U32_MAX || dir.offset === U32_MAX;
  return saturated ? zip64Directory(read, tail, eocd, size) : dir;
}

/** Replaces the saturated fields of `e` with their values from the zip64 extra field at cd[start, end). */
function applyZip64Extra(cd: Buffer, start: number, end: number, e: ZipEntry): void {
  for (let p = start; p + 4 <= end; ) {
    const id = cd.readUInt16LE(p);
    const len = cd.readUInt16LE(p + 2);
    if (id === 0x0001) {
      let q = p + 4;
      const next = (): number => {
        if (q + 8 > p + 4 + len) throw new ValidationError(`zip entry ${JSON.stringify(e.name)}: short zip64 extra field`);
        const v = Number(cd.readBigUInt64LE(q));
        q += 8;
        return v;
      };
      if (e.size === U32_MAX) e.size = next();
      if (e.compressedSize === U32_MAX) e.compressedSize = next();
      if (e.localOffset === U32_MAX) e.localOffset = next();
      return;
    }
    p += 4 + len;
  }
}

function parseDirectory(cd: Buffer, count: number): ZipEntry[] {
  const out: ZipEntry[] = [];
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + DIR_HEADER_LEN > cd.length || cd.readUInt32LE(p) !== DIR_SIG) throw new ValidationError("corrupt central directory");
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    const nameEnd = p + DIR_HEADER_LEN + nameLen;
    if (nameEnd + extraLen + commentLen > cd.length) throw new ValidationError("corrupt central directory");
    const e: ZipEntry = {
      name: cd.toString("utf8", p + DIR_HEADER_LEN, nameEnd),
      method: cd.readUInt16LE(p + 10),
      compressedSize: cd.readUInt32LE(p + 20),
      size: cd.readUInt32LE(p + 24),
      localOffset: cd.readUInt32LE(p + 42),
    };
    if (e.size === U32_MAX || e.compressedSize === U32_MAX || e.localOffset === U32_MAX) applyZip64Extra(cd, nameEnd, nameEnd + extraLen, e);
    out.push(e);
    p = nameEnd + extraLen + commentLen;
  }
  return out;
}

/** The entries listed by the central directory of a zip of `size` bytes. */
export async function readZipDirectory(read: ReadAt, size: number): Promise<ZipEntry[]> {
  const dir = await locateDirectory(read, size);
  if (dir.offset + dir.size > size) throw new ValidationError("central directory outside the file");
  const cd = buf(await read(dir.offset, dir.size));
  return parseDirectory(cd, dir.count);
}

/** The content of one entry, decompressed (stored or deflate) and checked against its size. */
export async function readZipEntry(read: ReadAt, size: number, e: ZipEntry): Promise<Uint8Array> {
  const what = `zip entry ${JSON.stringify(e.name)}`;
  const lh = e.localOffset + LOCAL_HEADER_LEN <= size ? buf(await read(e.localOffset, LOCAL_HEADER_LEN)) : null;
  if (!lh || lh.length < LOCAL_HEADER_LEN || lh.readUInt32LE(0) !== LOCAL_SIG) throw new ValidationError(`${what}: bad local header`);
  const nameLen = lh.readUInt16LE(26);
  const localName = buf(await read(e.localOffset + LOCAL_HEADER_LEN, nameLen)).toString("utf8");
  if (localName !== e.name) throw new ValidationError(`${what}: local header names another file`);
  const start = e.localOffset + LOCAL_HEADER_LEN + nameLen + lh.readUInt16LE(28);
  if (start + e.compressedSize > size) throw new ValidationError(`${what} is truncated`);
  const raw = await read(start, e.compressedSize);
  let data: Uint8Array;
  if (e.method === 0) data = raw;
  else if (e.method === 8) {
    try {
      data = inflateRawSync(raw);
    } catch (err) {
      throw new ValidationError(`${what}: ${(err as Error).message}`, { cause: err });
    }
  } else throw new ValidationError(`${what}: unsupported compression method ${e.method}`);
  if (data.length !== e.size) throw new ValidationError(`${what}: size mismatch`);
  return data;
}
