// What the proxy refuses to store or serve, checked after a download and
// before the file is renamed into the cache:
//
//   .zip   a readable zip whose central directory lists only files under
//          "<module>@<version>/", with clean relative names (no "..", ".",
//          empty elements, backslashes, NUL, absolute paths), no duplicate
//          names (case-folded, as golang.org/x/mod/zip), at most MAX_ZIP
//          bytes, and at most MAX_ZIP bytes uncompressed
//   .mod   at most MAX_GO_MOD bytes; its module line (if any) names the module
//   .info  JSON whose Version is the requested version (canonical requests)
//
// The limits are the go command's own (cmd/go/internal/modfetch/codehost:
// MaxGoMod = 16 << 20, MaxZipFile = 500 << 20), so nothing the go command
// would accept is refused, and nothing larger is ever written. The zip is
// read from the stored temp file: only its tail (the end records) and the
// central directory are read, never the whole file.

import { open } from "node:fs/promises";

export const MAX_ZIP = 500 << 20;
export const MAX_GO_MOD = 16 << 20;
/** .info, list and @latest answers: small JSON or text; Go reads them whole. */
export const MAX_SMALL = 16 << 20;

export class ValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ValidationError";
  }
}

const EOCD_SIG = 0x06054b50;
const EOCD64_LOC_SIG = 0x07064b50;
const EOCD64_SIG = 0x06064b50;
const CDIR_SIG = 0x02014b50;

/** Checks the zip stored at `path` for module@version. Throws ValidationError. */
export async function validateZip(path: string, module: string, version: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    const size = (await fh.stat()).size;
    if (size > MAX_ZIP) throw new ValidationError(`zip is ${size} bytes, more than the ${MAX_ZIP} the go command accepts`);
    if (size < 22) throw new ValidationError("not a zip file (too short)");
    const tailLen = Math.min(size, 22 + 65535 + 20);
    const tail = Buffer.alloc(tailLen);
    await fh.read(tail, 0, tailLen, size - tailLen);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === EOCD_SIG && i + 22 + tail.readUInt16LE(i + 20) <= tailLen) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new ValidationError("not a zip file (no end of central directory)");
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const loc = eocd - 20;
      if (loc < 0 || tail.readUInt32LE(loc) !== EOCD64_LOC_SIG) throw new ValidationError("zip64 locator missing");
      const off64 = Number(tail.readBigUInt64LE(loc + 8));
      const rec = Buffer.alloc(56);
      await fh.read(rec, 0, 56, off64);
      if (rec.readUInt32LE(0) !== EOCD64_SIG) throw new ValidationError("bad zip64 end record");
      count = Number(rec.readBigUInt64LE(32));
      cdSize = Number(rec.readBigUInt64LE(40));
      cdOffset = Number(rec.readBigUInt64LE(48));
    }
    if (cdOffset + cdSize > size) throw new ValidationError("central directory outside the file");
    const cd = Buffer.alloc(cdSize);
    await fh.read(cd, 0, cdSize, cdOffset);
    const prefix = `${module}@${version}/`;
    const seen = new Set<string>();
    let total = 0;
    let p = 0;
    for (let n = 0; n < count; n++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== CDIR_SIG) throw new ValidationError("corrupt central directory");
      let usize = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      if (p + 46 + nameLen + extraLen + commentLen > cd.length) throw new ValidationError("corrupt central directory");
      const name = cd.toString("utf8", p + 46, p + 46 + nameLen);
      if (usize === 0xffffffff) {
        // zip64 extended information extra field: uncompressed size first.
        let e = p + 46 + nameLen;
        const end = e + extraLen;
        while (e + 4 <= end) {
          const id = cd.readUInt16LE(e);
          const len = cd.readUInt16LE(e + 2);
          if (id === 0x0001 && len >= 8) {
            usize = Number(cd.readBigUInt64LE(e + 4));
            break;
          }
          e += 4 + len;
        }
      }
      p += 46 + nameLen + extraLen + commentLen;
      checkEntryName(name, prefix);
      const folded = name.toLowerCase();
      if (seen.has(folded)) throw new ValidationError(`zip has duplicate (case-insensitive) entry ${JSON.stringify(name)}`);
      seen.add(folded);
      total += usize;
      if (total > MAX_ZIP) throw new ValidationError(`zip unpacks to more than ${MAX_ZIP} bytes`);
    }
  } finally {
    await fh.close();
  }
}

function checkEntryName(name: string, prefix: string): void {
  if (!name.startsWith(prefix)) throw new ValidationError(`zip entry ${JSON.stringify(name)} is not under ${prefix}`);
  const rel = name.slice(prefix.length);
  if (rel === "") throw new ValidationError(`zip entry ${JSON.stringify(name)} has an empty name`);
  if (/[\0\\]/.test(rel) || rel.startsWith("/")) throw new ValidationError(`zip entry ${JSON.stringify(name)} has an unsafe name`);
  const elems = rel.split("/");
  // A trailing "/" (directory entry) leaves one empty last element.
  const check = rel.endsWith("/") ? elems.slice(0, -1) : elems;
  for (const e of check) {
    if (e === "" || e === "." || e === "..") throw new ValidationError(`zip entry ${JSON.stringify(name)} has an unsafe name`);
  }
}

/** The module path a go.mod declares, or null if it has no module directive. */
export function goModModulePath(text: string): string | null {
  const stripped = text.replace(/\/\/[^\n]*/g, "");
  const block = /^\s*module\s*\(\s*("[^"]*"|`[^`]*`|\S+)\s*\)/m.exec(stripped);
  const line = block ?? /^\s*module\s+("[^"]*"|`[^`]*`|\S+)/m.exec(stripped);
  if (!line) return null;
  const v = line[1]!;
  if (v.startsWith('"')) {
    try {
      return JSON.parse(v) as string;
    } catch {
      return v.slice(1, -1);
    }
  }
  if (v.startsWith("`")) return v.slice(1, -1);
  return v;
}

export function validateMod(data: Uint8Array, module: string): void {
  if (data.length > MAX_GO_MOD) throw new ValidationError(`go.mod is larger than ${MAX_GO_MOD} bytes`);
  const declared = goModModulePath(new TextDecoder().decode(data));
  if (declared !== null && declared !== module) {
    throw new ValidationError(`go.mod declares module ${JSON.stringify(declared)}, not ${JSON.stringify(module)}`);
  }
}

/** Parses and checks an .info (or @latest) answer; returns its Version. */
export function validateInfo(data: Uint8Array, wantVersion: string | null): string {
  if (data.length > MAX_SMALL) throw new ValidationError("info is too large");
  let info: unknown;
  try {
    info = JSON.parse(new TextDecoder().decode(data));
  } catch {
    throw new ValidationError("info is not JSON");
  }
  const v = (info as { Version?: unknown })?.Version;
  if (typeof v !== "string" || !v) throw new ValidationError("info has no Version");
  if (wantVersion !== null && v !== wantVersion) throw new ValidationError(`info is for version ${v}, not ${wantVersion}`);
  return v;
}

export function validateList(data: Uint8Array): void {
  if (data.length > MAX_SMALL) throw new ValidationError("list is too large");
}
