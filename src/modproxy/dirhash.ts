// The go.sum hashes ("h1:"), as golang.org/x/mod/sumdb/dirhash computes them:
//
//   Hash1(files) = "h1:" + base64(sha256(for each name, sorted:
//                                     hex(sha256(content)) + "  " + name + "\n"))
//
// HashZip applies it to every entry of a module zip (names as stored,
// "<module>@<version>/..."); the go.mod hash ("<module> <version>/go.mod h1:...")
// is Hash1 over a single file named "go.mod".

import { createHash } from "node:crypto";
import { inflateRawSync } from "node:zlib";
import { ValidationError } from "./validate.ts";

export function hash1(files: { name: string; data: Uint8Array }[]): string {
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const h = createHash("sha256");
  for (const f of sorted) {
    if (f.name.includes("\n")) throw new ValidationError("dirhash: file name with newline");
    h.update(`${createHash("sha256").update(f.data).digest("hex")}  ${f.name}\n`);
  }
  return `h1:${h.digest("base64")}`;
}

/** The go.sum hash of a go.mod file's content. */
export function hashGoMod(data: Uint8Array): string {
  return hash1([{ name: "go.mod", data }]);
}

/** Every entry of a zip, decompressed (stored or deflate). Throws ValidationError on a malformed zip. */
export function readZipEntries(zip: Uint8Array): { name: string; data: Uint8Array }[] {
  const b = Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength);
  if (b.length < 22) throw new ValidationError("not a zip file (too short)");
  let eocd = -1;
  for (let i = b.length - 22; i >= Math.max(0, b.length - 22 - 65535); i--) {
    if (b.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new ValidationError("not a zip file (no end of central directory)");
  let count = b.readUInt16LE(eocd + 10);
  let cdOffset = b.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || b.readUInt32LE(loc) !== 0x07064b50) throw new ValidationError("zip64 locator missing");
    const rec = Number(b.readBigUInt64LE(loc + 8));
    if (rec + 56 > b.length || b.readUInt32LE(rec) !== 0x06064b50) throw new ValidationError("bad zip64 end record");
    count = Number(b.readBigUInt64LE(rec + 32));
    cdOffset = Number(b.readBigUInt64LE(rec + 48));
  }
  const out: { name: string; data: Uint8Array }[] = [];
  let p = cdOffset;
  for (let n = 0; n < count; n++) {
    if (p + 46 > b.length || b.readUInt32LE(p) !== 0x02014b50) throw new ValidationError("corrupt central directory");
    const method = b.readUInt16LE(p + 10);
    let csize = b.readUInt32LE(p + 20);
    let usize = b.readUInt32LE(p + 24);
    const nameLen = b.readUInt16LE(p + 28);
    const extraLen = b.readUInt16LE(p + 30);
    const commentLen = b.readUInt16LE(p + 32);
    let off = b.readUInt32LE(p + 42);
    const name = b.toString("utf8", p + 46, p + 46 + nameLen);
    if (usize === 0xffffffff || csize === 0xffffffff || off === 0xffffffff) {
      let e = p + 46 + nameLen;
      const end = e + extraLen;
      while (e + 4 <= end) {
        const id = b.readUInt16LE(e);
        const len = b.readUInt16LE(e + 2);
        if (id === 0x0001) {
          let q = e + 4;
          if (usize === 0xffffffff) (usize = Number(b.readBigUInt64LE(q))), (q += 8);
          if (csize === 0xffffffff) (csize = Number(b.readBigUInt64LE(q))), (q += 8);
          if (off === 0xffffffff) off = Number(b.readBigUInt64LE(q));
          break;
        }
        e += 4 + len;
      }
    }
    p += 46 + nameLen + extraLen + commentLen;
    if (off + 30 > b.length || b.readUInt32LE(off) !== 0x04034b50) throw new ValidationError(`zip entry ${JSON.stringify(name)}: bad local header`);
    const localNameLen = b.readUInt16LE(off + 26);
    if (b.toString("utf8", off + 30, off + 30 + localNameLen) !== name) throw new ValidationError(`zip entry ${JSON.stringify(name)}: local header names another file`);
    const start = off + 30 + localNameLen + b.readUInt16LE(off + 28);
    if (start + csize > b.length) throw new ValidationError(`zip entry ${JSON.stringify(name)} is truncated`);
    const raw = b.subarray(start, start + csize);
    let data: Uint8Array;
    if (method === 0) data = raw;
    else if (method === 8) {
      try {
        data = inflateRawSync(raw);
      } catch (err) {
        throw new ValidationError(`zip entry ${JSON.stringify(name)}: ${(err as Error).message}`);
      }
    } else throw new ValidationError(`zip entry ${JSON.stringify(name)}: unsupported compression method ${method}`);
    if (data.length !== usize) throw new ValidationError(`zip entry ${JSON.stringify(name)}: size mismatch`);
    out.push({ name, data });
  }
  return out;
}

/** dirhash.HashZip of a module zip's bytes. */
export function hashZip(zip: Uint8Array): string {
  return hash1(readZipEntries(zip));
}
