// Local tier: the `go` command's own build-cache format (disk-layout.ts), in
// the same directory by default, so `go clean -cache` works, a warm Go cache
// is warm for gostash from its first run, and turning gostash off loses
// nothing.
//
// Writes go to a temp file in the same subdirectory and are renamed into
// place, output before entry, so an interrupted write is never a hit
// (disk-write.ts: one write).
//
// A full disk (ENOSPC), a read-only or foreign-owned cache directory, or
// one removed under a writer (`go clean -cache`, ENOENT) must not fail the
// build: `go` needs a DiskPath holding the output even when
// nothing can be cached (go vet and go list -export fail without it). So
// the output goes to an overflow directory instead (disk-overflow.ts: its
// layout and when its files are removed), no entry is written
// (later gets miss), and the owner is told through onTrouble.
//
// All I/O here is synchronous on purpose: a local get is three small
// syscalls, and doing them inline beats a round trip through a thread pool.

import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, renameSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { threadId } from "node:worker_threads";
import { ENTRY_SIZE, formatEntry, isDiskTrouble, markUsed, nowNanos, parseEntry, type StoredOutput } from "./disk-layout.ts";
import { OverflowDir, sweepOverflow } from "./disk-overflow.ts";
import { trimDir, type TrimReport } from "./disk-trim.ts";
import { putWhole } from "./disk-whole.ts";
import { DiskWrite, unlinkQuietly, type DiskPut, type Temp } from "./disk-write.ts";
import { writeWholeSync } from "../util/write-file.ts";

export { ENTRY_SIZE, formatEntry, isDiskTrouble, nowNanos, parseEntry, type DiskPut, type StoredOutput, type TrimReport };

export interface DiskStoreOptions {
  dir: string;
  /** Bytes; 0 or undefined means no cap (Go's own behaviour). */
  maxSize?: number;
  /** Trim entries unused for this long (ms); default Go's 5 days. */
  expiryMs?: number;
  /** Where outputs go when the cache directory cannot take them. */
  overflowDir?: string;
  /** Called on each disk problem that was turned into a pass-through. */
  onTrouble?: (err: Error) => void;
  /** Clock in ms, for tests. */
  now?: () => number;
}


export interface DiskStore {
  readonly dir: string;
  get(actionID: string): StoredOutput | null;
  put(actionID: string, outputID: string, size: number): DiskPut;
  /** Stores a whole output (already verified) in as few file operations as it can: bulk landing (disk-whole.ts). */
  putWhole(actionID: string, outputID: string, bytes: Uint8Array, timeNanos: bigint): StoredOutput;
  /** Where outputs go when the cache directory cannot take them (disk-overflow.ts). */
  readonly overflowDir: string;
  /** Counts bytes another writer of this directory stored (the pack landing worker: pack-lander.ts). */
  wrote(bytes: number): void;
  /** Reports a problem another writer of this directory turned into a pass-through (onTrouble). */
  trouble(err: unknown): void;
  /** Go-style trim (once a day) plus the size cap, and the overflow directory's sweep; cheap when nothing is due. */
  trim(opts?: { force?: boolean }): TrimReport;
  /** Bytes written by this process (outputs and entries) since the last trim. */
  readonly bytesWritten: number;
}

let tempSeq = 0;

/**
 * Temp files of the landing threads and the main thread never share a
 * name, nor do those of processes in other PID namespaces sharing one cache
 * volume (containers, whose PIDs repeat): a random part, and every temp
 * file is created exclusively.
 */
function tempSuffix(): string {
  return `${process.pid}.${threadId}.${++tempSeq}.${randomPart()}.tmp`;
}

const randomWord = new Uint32Array(1);
function randomPart(): string {
  crypto.getRandomValues(randomWord);
  return randomWord[0]!.toString(36);
}

export function createDiskStore(opts: DiskStoreOptions): DiskStore {
  return new GoCacheDir(opts);
}


class GoCacheDir implements DiskStore {
  readonly dir: string;
  bytesWritten = 0;
  /** The directory with a trailing slash: IDs are validated hex, so concatenation is safe and cheaper than path.join. */
  readonly base: string;
  private readonly now: () => number;
  readonly overflow: OverflowDir;
  readonly madeDirs = new Set<string>();
  private readonly entryBuf = Buffer.allocUnsafe(ENTRY_SIZE + 1);

  constructor(private readonly opts: DiskStoreOptions) {
    this.dir = opts.dir;
    this.base = join(opts.dir, "/");
    this.now = opts.now ?? Date.now;
    this.overflow = new OverflowDir(opts.overflowDir ?? join(tmpdir(), `gostash-overflow-${process.getuid?.() ?? "user"}`));
  }

  // The hot path of a warm build: about a thousand of these in 0.2 s. One
  // read of the entry and two stats through Bun.file (cheaper in Bun than
  // fs.statSync, which builds a Stats object with Dates).
  get(actionID: string): StoredOutput | null {
    const entryPath = `${this.base}${actionID.slice(0, 2)}/${actionID}-a`;
    const n = this.readEntry(entryPath);
    if (n < 0) return null;
    const e = parseEntry(this.entryBuf, n, actionID);
    if (!e) return null;
    let outPath = `${this.base}${e.outputID.slice(0, 2)}/${e.outputID}-d`;
    const out = Bun.file(outPath);
    let size = out.size;
    let mtime = out.lastModified;
    if (size !== e.size || (size === 0 && !existsSync(outPath))) {
      const inner = this.executableEntry(outPath);
      if (!inner || inner.size !== e.size) return null;
      ({ path: outPath, size, mtime } = inner);
    }
    const t = this.now();
    markUsed(outPath, mtime, t);
    markUsed(entryPath, Bun.file(entryPath).lastModified, t);
    return { outputID: e.outputID, size: e.size, timeNanos: e.timeNanos, diskPath: outPath };
  }

  /** Reads an entry file into the reused buffer (one byte more than an entry, to see one too long); -1 if absent. */
  private readEntry(path: string): number {
    try {
      const fd = openSync(path, "r");
      try {
        return readSync(fd, this.entryBuf, 0, ENTRY_SIZE + 1, 0);
      } finally {
        closeSync(fd);
      }
    } catch {
      return -1;
    }
  }

  /** A Go 1.26 executable entry: a directory with one named file in it (or null). */
  private executableEntry(outPath: string): { path: string; size: number; mtime: number } | null {
    try {
      const st = statSync(outPath);
      if (!st.isDirectory()) return null;
      const names = readdirSync(outPath);
      if (names.length !== 1) return null;
      markUsed(outPath, st.mtimeMs, this.now());
      const path = join(outPath, names[0]!);
      const inner = statSync(path);
      return { path, size: inner.size, mtime: inner.mtimeMs };
    } catch {
      return null;
    }
  }

  put(actionID: string, outputID: string, size: number): DiskPut {
    return new DiskWrite(this, actionID, outputID, size, this.openTemp(outputID));
  }

  putWhole(actionID: string, outputID: string, bytes: Uint8Array, timeNanos: bigint): StoredOutput {
    return putWhole(this, actionID, outputID, bytes, timeNanos);
  }

  wrote(bytes: number): void {
    this.bytesWritten += bytes;
  }

  trim(o: { force?: boolean } = {}): TrimReport {
    const report = trimDir({ dir: this.dir, maxSize: this.opts.maxSize, expiryMs: this.opts.expiryMs, bytesWritten: this.bytesWritten, now: this.now(), force: o.force });
    if (report.skipped) {
      if (report.counted) this.bytesWritten = 0; // added to the usage estimate
      return report;
    }
    this.bytesWritten = 0;
    sweepOverflow(this.overflow.dir, this.now());
    return report;
  }

  ensureSubdir(id: string): string {
    const sub = this.base + id.slice(0, 2);
    if (!this.madeDirs.has(sub)) {
      mkdirSync(sub, { recursive: true });
      this.madeDirs.add(sub);
    }
    return sub;
  }

  finalPath(outputID: string): string {
    return `${this.base}${outputID.slice(0, 2)}/${outputID}-d`;
  }

  get overflowDir(): string {
    return this.overflow.dir;
  }

  trouble(err: unknown): void {
    this.opts.onTrouble?.(err as Error);
  }

  private openTemp(outputID: string): Temp {
    const sub = this.base + outputID.slice(0, 2);
    const path = `${sub}/${outputID}-d.${tempSuffix()}`;
    try {
      this.ensureSubdir(outputID);
      return { path, fd: openSync(path, "wx+", 0o644), overflow: false };
    } catch (err) {
      let cause = err;
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        // `go clean -cache` may have removed the subdirectory under a daemon.
        this.madeDirs.delete(sub);
        try {
          this.ensureSubdir(outputID);
          return { path, fd: openSync(path, "wx+", 0o644), overflow: false };
        } catch (err2) {
          cause = err2;
        }
      }
      if (!isDiskTrouble(cause)) throw cause;
      this.trouble(cause);
      const o = this.overflow.pathFor(outputID);
      return { path: o, fd: openSync(o, "w", 0o600), overflow: true };
    }
  }

  /** Writes the entry file atomically (temp file, then rename). */
  writeEntry(actionID: string, outputID: string, size: number, timeNanos: bigint): void {
    const sub = this.ensureSubdir(actionID);
    const tmp = join(sub, `${actionID}-a.${tempSuffix()}`);
    const data = formatEntry(actionID, outputID, size, timeNanos);
    try {
      try {
        writeWholeSync(tmp, data, "wx");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        mkdirSync(sub, { recursive: true });
        writeWholeSync(tmp, data, "wx");
      }
      renameSync(tmp, join(sub, `${actionID}-a`));
    } catch (err) {
      unlinkQuietly(tmp);
      throw err;
    }
  }

  get nowNanos(): bigint {
    return nowNanos(this.now());
  }
}
