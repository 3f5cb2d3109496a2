// The local file a pack (layout: packs.ts) is built in before it is
// uploaded with one PUT, streamed from the file: outputs are added raw, in
// order; a frame is closed once it holds about its target of raw bytes
// (small first frames, so a reader's first segment is small too, then up
// to FRAME_RAW), compressed on the thread pool (two frames at a time,
// appended in order), and everything appended is hashed on the way, so the
// pack's name (the SHA-256 of its bytes) is known when the last frame is in.
//
// Memory: the frame being filled and at most COMPRESSING frames being
// compressed (up to 16 MiB each, or one output of up to 64 MiB). Files live in <cache dir>/gostash-packs/ and are removed once the
// pack is uploaded or given up; files left by a process that died are
// removed by sweepPackFiles (the periodic trim).

import { closeSync, mkdirSync, openSync, statSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { namesIn } from "../util/names-in.ts";
import type { PackEntry, PackFrame, PackRef } from "./packs.ts";
import { encodeMeta, type ObjectMeta } from "./s3-objects.ts";

/** Raw bytes of a frame once the first ones have grown. */
export const FRAME_RAW = 16 << 20;
const FIRST_FRAME_RAW = 1 << 20;
/**
 * zstd parameters of pack frames: a window as large as a frame and
 * long-distance matching, which finds what a test variant shares with the
 * package it tests (measured on golang.org/x/tools' 334.5 MiB of outputs:
 * 61.6 MiB against 64.2 MiB with 8 MiB frames and the default window, for
 * 0.3 s more compression and the same decompression time); and level 7,
 * the first level whose packs of x/tools are smaller than a tar --zstd
 * --long=30 of its whole cache (60.8 MiB against 62.0 at level 6 and the
 * tarball's 61.9, for 0.8 s more compression CPU spread over a cold build
 * of two minutes, and the same decompression time; docs/packs.md).
 */
function packZstd(z: typeof import("node:zlib")): Record<number, number> {
  return {
    [z.constants.ZSTD_c_compressionLevel]: 7,
    [z.constants.ZSTD_c_windowLog]: Math.log2(FRAME_RAW),
    [z.constants.ZSTD_c_enableLongDistanceMatching]: 1,
  };
}
let compressor: Promise<(raw: Uint8Array) => Promise<Uint8Array>> | null = null;
/**
 * Compresses a frame on the thread pool (node:zlib, since Bun.zstdCompress
 * takes no window or long-distance settings). node:zlib is loaded at the
 * first frame, not with this module, which every plugin run loads, packs or
 * not: with node:fs/promises (buildcache/disk-usage.ts) loaded late too, a
 * warm `go build std` without a bucket took 64 ms of the plugin's CPU
 * instead of 68.
 */
function compressFrame(raw: Uint8Array): Promise<Uint8Array> {
  compressor ??= import("node:zlib").then((z) => {
    const options = { params: packZstd(z), chunkSize: FRAME_OUTPUT_CHUNK };
    return (bytes: Uint8Array) => new Promise<Uint8Array>((resolve, reject) => z.zstdCompress(bytes, options, (err, out) => (err ? reject(err) : resolve(out))));
  });
  return compressor.then((compress) => compress(raw));
}
/**
 * node:zlib hands the output back in chunks of this size, each a turn of
 * the main thread and a new thread-pool job: at its default of 16 KiB a
 * 16 MiB frame took 250 of them, 40-60 ms of the main thread per 64 MiB
 * packed (under 10 ms at 4 MiB), while the go command waits on it.
 */
const FRAME_OUTPUT_CHUNK = 4 << 20;
const COMPRESSING = 2;
/** Pack files not written to for this long belong to a process that died. */
const STALE_MS = 24 * 3600_000;
let seq = 0;

/** The directory for pack files under a cache directory. */
export function packFilesDir(cacheDir: string): string {
  return join(cacheDir, "gostash-packs");
}

/** A new file name in dir, unique to this process. */
export function packTempPath(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return join(dir, `${process.pid}-${++seq}.pack.tmp`);
}

interface OpenFrame {
  parts: Uint8Array[];
  raw: number;
  entries: PackEntry[];
}

export class PackFileWriter {
  private fd: number | null;
  private readonly hasher = new Bun.CryptoHasher("sha256");
  private readonly frames: PackFrame[] = [];
  private readonly entries: PackEntry[] = [];
  private cur: OpenFrame = { parts: [], raw: 0, entries: [] };
  private target = FIRST_FRAME_RAW;
  /** Frames being compressed, in pack order; each appends itself after the one before. */
  private compressing: Promise<void>[] = [];
  private tail: Promise<void> = Promise.resolve();
  /** Bytes appended to the file so far. */
  stored = 0;
  /** Raw bytes added so far. */
  raw = 0;

  constructor(
    readonly path: string,
    private readonly compress: boolean,
  ) {
    this.fd = openSync(path, "w", 0o600);
  }

  get entryCount(): number {
    return this.entries.length + this.cur.entries.length;
  }

  /** Adds one output (its raw bytes); may wait while frames are compressed. */
  async add(actionID: string, meta: ObjectMeta, bytes: Uint8Array): Promise<void> {
    if (this.fd === null) throw new Error("pack file: add after finish");
    if (this.cur.raw > 0 && this.cur.raw + bytes.length > this.target) await this.closeFrame();
    const m: ObjectMeta = { ...meta, encoding: "identity" };
    this.cur.entries.push({ actionID, frame: -1, offset: this.cur.raw, meta: m, raw: encodeMeta(m) });
    this.cur.parts.push(bytes);
    this.cur.raw += bytes.length;
    this.raw += bytes.length;
  }

  /** Closes the file; the pack as a head lists it. */
  async finish(writtenMs: number): Promise<PackRef> {
    await this.closeFrame();
    await this.tail;
    if (this.fd === null) throw new Error("pack file: finished twice");
    closeSync(this.fd);
    this.fd = null;
    return { name: this.hasher.digest("hex"), bytes: this.stored, writtenMs, frames: this.frames, entries: this.entries };
  }

  /** Removes the file (after the upload, or instead of it). */
  discard(): void {
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {}
      this.fd = null;
    }
    try {
      unlinkSync(this.path);
    } catch {}
  }

  private async closeFrame(): Promise<void> {
    const f = this.cur;
    if (!f.raw && !f.entries.length) return;
    this.cur = { parts: [], raw: 0, entries: [] };
    this.target = Math.min(this.target * 2, FRAME_RAW);
    while (this.compressing.length >= COMPRESSING) await this.compressing.shift();
    const raw = f.parts.length === 1 ? f.parts[0]! : Buffer.concat(f.parts);
    const body: Promise<Uint8Array> = this.compress ? compressFrame(raw) : Promise.resolve(raw);
    const before = this.tail;
    const done = (async () => {
      const z = await body;
      await before;
      // A frame zstd does not shrink is stored as it is.
      const zstd = this.compress && z.length < raw.length * 0.95;
      this.append(zstd ? z : raw, raw.length, zstd, f.entries);
    })();
    // Awaited by finish() or the next closeFrame(); never left unobserved if neither comes (the file is discarded).
    done.catch(() => {});
    this.tail = done;
    this.compressing.push(done);
  }

  private append(bytes: Uint8Array, rawLength: number, zstd: boolean, entries: PackEntry[]): void {
    if (this.fd === null) throw new Error("pack file: append after close");
    let off = 0;
    while (off < bytes.length) off += writeSync(this.fd, bytes, off, bytes.length - off, this.stored + off);
    this.hasher.update(bytes);
    const frame = this.frames.length;
    this.frames.push({ offset: this.stored, length: bytes.length, rawLength, zstd });
    for (const e of entries) this.entries.push({ ...e, frame });
    this.stored += bytes.length;
  }
}

/** Removes pack files not written to for a day (a process died before cleaning up). */
export function sweepPackFiles(dir: string, now = Date.now()): number {
  let n = 0;
  for (const name of namesIn(dir)) {
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
