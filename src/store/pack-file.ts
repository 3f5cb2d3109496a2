// Local files behind a pack upload (layout: packs.ts):
//
// PackFileWriter  the pack being built: encoded entries appended in order
//                 and hashed on the way, so its name (the SHA-256 of its
//                 bytes) is known when the last entry is in; then uploaded
//                 with one PUT straight from the file (never held in memory).
// EncodedSpool    the encoded bodies a run's single-object uploads already
//                 made (zstd is the costly part of writing a pack), kept on
//                 disk until the run's pack is built, so a cold build does
//                 not compress its outputs twice.
//
// Both live in <cache dir>/gostash-packs/ and are removed when the pack is
// uploaded or given up; files left by a process that died are removed by
// sweepPackFiles (the periodic trim).

import { closeSync, mkdirSync, openSync, readdirSync, readSync, statSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { PackEntry, PackRef } from "./packs.ts";
import { encodeMeta, type ObjectMeta } from "./s3-objects.ts";

/** Pack files not written to for this long belong to a process that died. */
const STALE_MS = 24 * 3600_000;
let seq = 0;

/** The directory for pack files under a cache directory. */
export function packFilesDir(cacheDir: string): string {
  return join(cacheDir, "gostash-packs");
}

/** A new file name in dir, unique to this process. */
export function packTempPath(dir: string, what: "pack" | "spool"): string {
  mkdirSync(dir, { recursive: true });
  return join(dir, `${process.pid}-${++seq}.${what}.tmp`);
}

function writeAll(fd: number, bytes: Uint8Array, at: number): void {
  let off = 0;
  while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off, at + off);
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {}
}

export class PackFileWriter {
  private fd: number | null;
  private readonly hasher = new Bun.CryptoHasher("sha256");
  private readonly entries: PackEntry[] = [];
  bytes = 0;

  constructor(readonly path: string) {
    this.fd = openSync(path, "w", 0o600);
  }

  get entryCount(): number {
    return this.entries.length;
  }

  append(actionID: string, meta: ObjectMeta, body: Uint8Array): void {
    if (this.fd === null) throw new Error("pack file: append after finish");
    writeAll(this.fd, body, this.bytes);
    this.hasher.update(body);
    this.entries.push({ actionID, offset: this.bytes, length: body.length, meta, raw: encodeMeta(meta) });
    this.bytes += body.length;
  }

  /** Closes the file; the pack as a head lists it. */
  finish(writtenMs: number): PackRef {
    if (this.fd === null) throw new Error("pack file: finished twice");
    closeSync(this.fd);
    this.fd = null;
    return { name: this.hasher.digest("hex"), bytes: this.bytes, writtenMs, entries: this.entries };
  }

  /** Removes the file (after the upload, or instead of it). */
  discard(): void {
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {}
      this.fd = null;
    }
    unlinkQuietly(this.path);
  }
}

interface Spooled {
  offset: number;
  length: number;
  meta: ObjectMeta;
}

export class EncodedSpool {
  private fd: number | null = null;
  private readonly at = new Map<string, Spooled>();
  private bytes = 0;

  constructor(
    private readonly path: string,
    /** Bodies beyond this many bytes in all are not kept. */
    private readonly maxBytes: number,
  ) {}

  get size(): number {
    return this.bytes;
  }

  /** Keeps an encoded body; false if it was not kept (full, closed, or a disk error). */
  add(actionID: string, meta: ObjectMeta, body: Uint8Array): boolean {
    if (this.at.has(actionID) || this.bytes + body.length > this.maxBytes) return false;
    try {
      this.fd ??= openSync(this.path, "w+", 0o600);
      writeAll(this.fd, body, this.bytes);
    } catch {
      return false;
    }
    this.at.set(actionID, { offset: this.bytes, length: body.length, meta });
    this.bytes += body.length;
    return true;
  }

  /** The body kept for an action, if it encodes this output; else null. */
  take(actionID: string, outputID: string): { meta: ObjectMeta; body: Uint8Array } | null {
    const s = this.at.get(actionID);
    if (!s || s.meta.outputID !== outputID || this.fd === null) return null;
    const body = new Uint8Array(s.length);
    let off = 0;
    try {
      while (off < s.length) {
        const n = readSync(this.fd, body, off, s.length - off, s.offset + off);
        if (n <= 0) return null;
        off += n;
      }
    } catch {
      return null;
    }
    return { meta: s.meta, body };
  }

  close(): void {
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {}
      this.fd = null;
      unlinkQuietly(this.path);
    }
    this.at.clear();
  }
}

/** Removes pack files not written to for a day (a process died before cleaning up). */
export function sweepPackFiles(dir: string, now = Date.now()): number {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  let n = 0;
  for (const name of names) {
    const p = join(dir, name);
    try {
      if (name.endsWith(".tmp") && statSync(p).mtimeMs < now - STALE_MS) {
        unlinkSync(p);
        n++;
      }
    } catch {}
  }
  return n;
}
