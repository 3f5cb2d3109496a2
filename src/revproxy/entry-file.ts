// One cached response as one file: the same bytes on the local disk and as
// the bucket object, so a remote hit is one GET landed as it comes.
//
// Layout (local: <cache-dir>/revproxy/<xx>/<key>; bucket:
// [prefix/]revproxy/<xx>/<key>; <key> = SHA-256 hex of "gostash-revproxy
// GET <url>", <xx> its first two digits; see keys.ts):
//
//   line 1   "gostash-revproxy 1 <sha256> <size> <metalen>\n", fixed width
//            (114 bytes): the SHA-256 of the body (64 hex), its size (20
//            digits) and the length of the meta line (8 digits), all
//            zero-padded. Written last, in place, once the body is in.
//   line 2   meta: JSON {url, status, headers: [[name, value]...],
//            storedAt (ms), varying: [[name, value]...] when the answer
//            has a Vary (vary.ts)}, then "\n". Only end-to-end headers that
//            describe the body are kept (content-type, etag, ...).
//   body     <size> bytes, exactly as the origin sent them (requested
//            with Accept-Encoding: identity, so never compressed by us or
//            for one client).
//
// An entry is accepted only if the file (or object) is exactly 114 +
// metalen + 1 + size bytes and the body's SHA-256 matches line 1;
// anything else is a miss, counted and deleted, never served. Entries are
// written to a temp file in the same directory and renamed into place.

import { open, type FileHandle } from "node:fs/promises";

export const MAGIC = "gostash-revproxy";
export const FORMAT_VERSION = 1;
export const HEAD_BYTES = MAGIC.length + 1 + 1 + 1 + 64 + 1 + 20 + 1 + 8 + 1;
/** A meta line longer than this is not ours. */
export const MAX_META_BYTES = 64 << 10;

export interface EntryHead {
  sha256: string;
  size: number;
  metaLength: number;
}

export interface EntryMeta {
  url: string;
  status: number;
  headers: [string, string][];
  storedAt: number;
  /** The request's values of the headers the answer varies on (vary.ts); absent when it does not vary. */
  varying?: [string, string][];
}

/** Where the body starts in an entry file. */
export const bodyOffset = (h: EntryHead): number => HEAD_BYTES + h.metaLength + 1;

export function encodeHead(h: EntryHead): Uint8Array {
  const text = `${MAGIC} ${FORMAT_VERSION} ${h.sha256} ${String(h.size).padStart(20, "0")} ${String(h.metaLength).padStart(8, "0")}\n`;
  if (text.length !== HEAD_BYTES) throw new Error(`revproxy: entry head is ${text.length} bytes, not ${HEAD_BYTES}`);
  return new TextEncoder().encode(text);
}

const HEAD_RE = new RegExp(`^${MAGIC} ${FORMAT_VERSION} ([0-9a-f]{64}) (\\d{20}) (\\d{8})\\n$`);

/** The head of an entry, or null when these bytes are not one. */
export function decodeHead(bytes: Uint8Array): EntryHead | null {
  if (bytes.length < HEAD_BYTES) return null;
  const m = HEAD_RE.exec(new TextDecoder().decode(bytes.subarray(0, HEAD_BYTES)));
  if (!m) return null;
  const size = Number(m[2]);
  const metaLength = Number(m[3]);
  if (!Number.isSafeInteger(size) || metaLength > MAX_META_BYTES) return null;
  return { sha256: m[1]!, size, metaLength };
}

export function encodeMeta(m: EntryMeta): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(m));
}

export function decodeMeta(bytes: Uint8Array): EntryMeta | null {
  try {
    const m = JSON.parse(new TextDecoder().decode(bytes)) as EntryMeta;
    if (typeof m.url !== "string" || typeof m.status !== "number" || !Array.isArray(m.headers)) return null;
    if (!isPairs(m.headers) || (m.varying !== undefined && !isPairs(m.varying))) return null;
    return { url: m.url, status: m.status, headers: m.headers, storedAt: Number(m.storedAt) || 0, ...(m.varying ? { varying: m.varying } : {}) };
  } catch {
    return null;
  }
}

const isPairs = (v: unknown): v is [string, string][] =>
  Array.isArray(v) && v.every((h) => Array.isArray(h) && typeof h[0] === "string" && typeof h[1] === "string");

/**
 * Writes a new entry: head placeholder and meta at once, then the body as
 * it arrives (hashed on the way), then the real head. The file is a temp
 * file; the caller renames it into place (or removes it).
 */
export class EntryWriter {
  private readonly hasher = new Bun.CryptoHasher("sha256");
  /** Body bytes written. */
  written = 0;

  private constructor(
    readonly tmp: string,
    private fh: FileHandle | null,
    readonly bodyStart: number,
  ) {}

  static async create(tmp: string, meta: EntryMeta): Promise<EntryWriter> {
    const metaBytes = encodeMeta(meta);
    if (metaBytes.length > MAX_META_BYTES) throw new Error(`revproxy: meta of ${meta.url} is over ${MAX_META_BYTES} bytes`);
    const fh = await open(tmp, "w", 0o644);
    const placeholder = encodeHead({ sha256: "0".repeat(64), size: 0, metaLength: metaBytes.length });
    await fh.write(Buffer.concat([placeholder, metaBytes, Buffer.from("\n")]), 0, undefined, 0);
    return new EntryWriter(tmp, fh, HEAD_BYTES + metaBytes.length + 1);
  }

  /** Appends body bytes (never concurrently with another write). */
  async write(chunk: Uint8Array): Promise<void> {
    if (!this.fh) throw new Error("revproxy: entry writer is closed");
    this.hasher.update(chunk);
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await this.fh.write(chunk, off, chunk.length - off, this.bodyStart + this.written + off);
      off += bytesWritten;
    }
    this.written += chunk.length;
  }

  /** Writes the real head and closes the file. */
  async finish(): Promise<EntryHead> {
    if (!this.fh) throw new Error("revproxy: entry writer is closed");
    const head = { sha256: this.hasher.digest("hex"), size: this.written, metaLength: this.bodyStart - HEAD_BYTES - 1 };
    await this.fh.write(encodeHead(head), 0, HEAD_BYTES, 0);
    await this.close();
    return head;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close().catch(() => {});
  }
}

/** An entry's head and meta, read from the start of its file; null when it is not a whole entry. */
export async function readEntryHeader(fh: FileHandle, fileSize: number): Promise<{ head: EntryHead; meta: EntryMeta } | null> {
  const first = Buffer.alloc(HEAD_BYTES);
  if ((await fh.read(first, 0, HEAD_BYTES, 0)).bytesRead !== HEAD_BYTES) return null;
  const head = decodeHead(first);
  if (!head || fileSize !== bodyOffset(head) + head.size) return null;
  const metaBytes = Buffer.alloc(head.metaLength + 1);
  if ((await fh.read(metaBytes, 0, metaBytes.length, HEAD_BYTES)).bytesRead !== metaBytes.length) return null;
  if (metaBytes[head.metaLength] !== 0x0a) return null;
  const meta = decodeMeta(metaBytes.subarray(0, head.metaLength));
  return meta ? { head, meta } : null;
}

/** SHA-256 of `size` bytes from `offset`, read in 1 MiB chunks. */
export async function hashRange(fh: FileHandle, offset: number, size: number): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  const buf = Buffer.alloc(Math.min(1 << 20, Math.max(size, 1)));
  for (let pos = 0; pos < size; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), offset + pos);
    if (bytesRead <= 0) throw new Error("revproxy: entry file shrank while it was read");
    hasher.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  return hasher.digest("hex");
}
