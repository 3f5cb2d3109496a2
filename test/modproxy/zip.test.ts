// The one zip reader (src/modproxy/module/zip.ts) and its two users: the
// central-directory cases the validation and the go.sum hash each handled
// with a parser of their own before, read from bytes and from a file alike.
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { deflateRawSync } from "node:zlib";
import { hash1, hashZip } from "../../src/modproxy/module/dirhash.ts";
import { validateZip } from "../../src/modproxy/module/validate.ts";
import { ValidationError } from "../../src/modproxy/module/validation-error.ts";
import { bytesReader, fileReader, readZipDirectory, readZipEntry, type ZipEntry } from "../../src/modproxy/module/zip.ts";
import { tempDir } from "../helpers/env.ts";

interface Spec {
  name: string;
  data: string;
  /** 0 stored (default), 8 deflate, or another (unsupported) method. */
  method?: number;
  /** Sizes and offset in the zip64 extra field, 0xffffffff in the header. */
  zip64?: boolean;
  /** The name the local header gives (default: the same). */
  localName?: string;
}

interface ZipOptions {
  comment?: string;
  /** Saturate the end record and add a zip64 end record and locator. */
  zip64End?: boolean;
  /** Break this many bytes of the directory's first signature. */
  corruptDirectory?: boolean;
  /** Move the directory offset past the end. */
  directoryOffsetDelta?: number;
}

const U32 = 0xffffffff;

function buildZip(specs: Spec[], o: ZipOptions = {}): Uint8Array {
  const parts: Buffer[] = [];
  const dir: Buffer[] = [];
  let offset = 0;
  for (const s of specs) {
    const data = Buffer.from(s.data);
    const method = s.method ?? 0;
    const stored = method === 8 ? deflateRawSync(data) : data;
    const localName = Buffer.from(s.localName ?? s.name);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(method, 8);
    lh.writeUInt32LE(stored.length, 18);
    lh.writeUInt32LE(data.length, 22);
    lh.writeUInt16LE(localName.length, 26);
    parts.push(lh, localName, stored);
    const name = Buffer.from(s.name);
    const extra = Buffer.alloc(s.zip64 ? 4 + 24 : 0);
    if (s.zip64) {
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(24, 2);
      extra.writeBigUInt64LE(BigInt(data.length), 4);
      extra.writeBigUInt64LE(BigInt(stored.length), 12);
      extra.writeBigUInt64LE(BigInt(offset), 20);
    }
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(method, 10);
    ch.writeUInt32LE(s.zip64 ? U32 : stored.length, 20);
    ch.writeUInt32LE(s.zip64 ? U32 : data.length, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt16LE(extra.length, 30);
    ch.writeUInt32LE(s.zip64 ? U32 : offset, 42);
    dir.push(ch, name, extra);
    offset += 30 + localName.length + stored.length;
  }
  const cd = Buffer.concat(dir);
  if (o.corruptDirectory) cd.writeUInt32LE(0x12345678, 0);
  const cdOffset = offset + (o.directoryOffsetDelta ?? 0);
  const tail: Buffer[] = [];
  if (o.zip64End) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0);
    rec.writeBigUInt64LE(BigInt(specs.length), 32);
    rec.writeBigUInt64LE(BigInt(cd.length), 40);
    rec.writeBigUInt64LE(BigInt(cdOffset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(offset + cd.length), 8);
    tail.push(rec, loc);
  }
  const comment = Buffer.from(o.comment ?? "");
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(o.zip64End ? 0xffff : specs.length, 8);
  end.writeUInt16LE(o.zip64End ? 0xffff : specs.length, 10);
  end.writeUInt32LE(o.zip64End ? U32 : cd.length, 12);
  end.writeUInt32LE(o.zip64End ? U32 : cdOffset, 16);
  end.writeUInt16LE(comment.length, 20);
  return Buffer.concat([...parts, cd, ...tail, end, comment]);
}

const t = tempDir("gostash-zip-");
afterAll(() => t.cleanup());
let n = 0;

/** The directory as read from bytes and from a file: both readers must agree. */
async function directory(zip: Uint8Array): Promise<ZipEntry[]> {
  const fromBytes = await readZipDirectory(bytesReader(zip), zip.length);
  const path = join(t.path, `z${++n}.zip`);
  writeFileSync(path, zip);
  const fh = await open(path, "r");
  try {
    expect(await readZipDirectory(fileReader(fh), zip.length)).toEqual(fromBytes);
  } finally {
    await fh.close();
  }
  return fromBytes;
}

async function directoryError(zip: Uint8Array): Promise<string> {
  try {
    await directory(zip);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as Error).message;
  }
  throw new Error("the directory was read");
}

const M = "example.com/m@v1.0.0/";
const FILES: Spec[] = [
  { name: `${M}go.mod`, data: "module example.com/m\n" },
  { name: `${M}a/b.go`, data: "package a\n".repeat(50), method: 8 },
];

describe("central directory", () => {
  test("a plain zip: names, methods, sizes, offsets", async () => {
    const entries = await directory(buildZip(FILES));
    expect(entries.map((e) => [e.name, e.method, e.size])).toEqual([
      [`${M}go.mod`, 0, 21],
      [`${M}a/b.go`, 8, 500],
    ]);
    expect(entries[0]!.localOffset).toBe(0);
    expect(entries[1]!.compressedSize).toBeLessThan(500);
  });

  test("an archive comment after the end record, even one that contains an end signature", async () => {
    const fake = Buffer.alloc(22);
    fake.writeUInt32LE(0x06054b50, 0);
    fake.writeUInt16LE(9999, 20); // a "comment" that would run past the end: not the real record
    const entries = await directory(buildZip(FILES, { comment: `note ${fake.toString("latin1")}` }));
    expect(entries.map((e) => e.name)).toEqual(FILES.map((f) => f.name));
  });

  test("zip64: the end record's fields in the zip64 end record, sizes and offsets in the extra field", async () => {
    const specs = FILES.map((f) => ({ ...f, zip64: true }));
    const entries = await directory(buildZip(specs, { zip64End: true }));
    expect(entries.map((e) => [e.name, e.size])).toEqual([
      [`${M}go.mod`, 21],
      [`${M}a/b.go`, 500],
    ]);
    expect(entries[1]!.localOffset).toBe(30 + FILES[0]!.name.length + 21);
  });

  test("malformed zips are ValidationErrors that say what is wrong", async () => {
    expect(await directoryError(new Uint8Array(10))).toBe("not a zip file (too short)");
    expect(await directoryError(new TextEncoder().encode("this is not a zip file at all, no sir"))).toBe("not a zip file (no end of central directory)");
    expect(await directoryError(buildZip(FILES, { corruptDirectory: true }))).toBe("corrupt central directory");
    expect(await directoryError(buildZip(FILES, { directoryOffsetDelta: 10_000 }))).toBe("central directory outside the file");
    // zip64 fields saturated, but no locator before the end record.
    const noLocator = Buffer.from(buildZip(FILES));
    noLocator.writeUInt32LE(U32, noLocator.length - 22 + 16);
    expect(await directoryError(noLocator)).toBe("zip64 locator missing");
    // A locator pointing at something that is not a zip64 end record.
    const badRecord = Buffer.from(buildZip(FILES, { zip64End: true }));
    badRecord.writeBigUInt64LE(0n, badRecord.length - 22 - 20 + 8);
    expect(await directoryError(badRecord)).toBe("bad zip64 end record");
    // A directory header whose name runs past the directory.
    const overrun = Buffer.from(buildZip(FILES));
    const cdStart = overrun.readUInt32LE(overrun.length - 22 + 16);
    overrun.writeUInt16LE(60_000, cdStart + 28);
    expect(await directoryError(overrun)).toBe("corrupt central directory");
    // A truncated zip.
    const good = buildZip(FILES);
    await expect(directory(good.subarray(0, good.length - 10))).rejects.toThrow(ValidationError);
  });
});

describe("entries", () => {
  test("stored and deflated entries read back", async () => {
    const zip = buildZip(FILES);
    const read = bytesReader(zip);
    const entries = await readZipDirectory(read, zip.length);
    const texts = await Promise.all(entries.map(async (e) => new TextDecoder().decode(await readZipEntry(read, zip.length, e))));
    expect(texts).toEqual(FILES.map((f) => f.data));
  });

  test("entries that cannot be read are ValidationErrors", async () => {
    const entryError = async (zip: Uint8Array) => {
      const read = bytesReader(zip);
      const [e] = await readZipDirectory(read, zip.length);
      return readZipEntry(read, zip.length, e!).then(
        () => "read",
        (err: Error) => err.message,
      );
    };
    expect(await entryError(buildZip([{ name: `${M}x`, data: "x", method: 12 }]))).toContain("unsupported compression method 12");
    expect(await entryError(buildZip([{ name: `${M}x`, data: "x", localName: `${M}y` }]))).toContain("local header names another file");
    const badSize = Buffer.from(buildZip([{ name: `${M}x`, data: "xyz" }]));
    badSize.writeUInt32LE(2, badSize.readUInt32LE(badSize.length - 22 + 16) + 24); // directory says 2 bytes
    expect(await entryError(badSize)).toContain("size mismatch");
    const badLocal = Buffer.from(buildZip([{ name: `${M}x`, data: "x" }]));
    badLocal.writeUInt32LE(0, 0);
    expect(await entryError(badLocal)).toContain("bad local header");
    const badDeflate = Buffer.from(buildZip([{ name: `${M}x`, data: "hello hello hello", method: 8 }]));
    badDeflate.fill(0xff, 30 + `${M}x`.length, 30 + `${M}x`.length + 4);
    expect(await entryError(badDeflate)).toMatch(/zip entry ".*x": /);
  });
});

describe("the reader's two users", () => {
  test("dirhash hashes every entry's content, stored, deflated or zip64", async () => {
    const want = hash1(FILES.map((f) => ({ name: f.name, data: new TextEncoder().encode(f.data) })));
    expect(await hashZip(buildZip(FILES))).toBe(want);
    expect(await hashZip(buildZip(FILES.map((f) => ({ ...f, zip64: true })), { zip64End: true, comment: "c" }))).toBe(want);
  });

  test("validation reads the same directory from the stored file", async () => {
    const check = (zip: Uint8Array) => {
      const path = join(t.path, `v${++n}.zip`);
      writeFileSync(path, zip);
      return validateZip(path, "example.com/m", "v1.0.0");
    };
    await check(buildZip(FILES));
    await check(buildZip(FILES.map((f) => ({ ...f, zip64: true })), { zip64End: true, comment: "c" }));
    await expect(check(buildZip([...FILES, { name: "example.com/other@v1.0.0/x", data: "x" }]))).rejects.toThrow(/not under/);
    await expect(check(buildZip(FILES, { corruptDirectory: true }))).rejects.toThrow("corrupt central directory");
  });
});
