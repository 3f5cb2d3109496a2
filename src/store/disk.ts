// Local tier: the `go` command's own build-cache format, in the same
// directory by default, so `go clean -cache` works, a warm Go cache is warm
// for gostash from its first run, and turning gostash off loses nothing.
//
// Layout (cmd/go/internal/cache/cache.go):
//   <dir>/<xx>/<actionhex>-a   one line, exactly 175 bytes:
//       "v1 <actionhex> <outputhex> <size %20d> <unix nanos %20d>\n"
//   <dir>/<xx>/<outputhex>-d   the output bytes; this is the DiskPath.
//                              (Go 1.26 may store an executable as a
//                              directory holding one named file.)
//   <dir>/trim.txt             Unix seconds of the last trim, shared with Go
//   <dir>/gostash-usage.json   our running estimate of the bytes stored,
//                              so the --max-size cap needs no walk per run
// <xx> is the first byte of the ID in hex.
//
// Writes go to a temp file in the same subdirectory and are renamed into
// place, output before entry, so an interrupted write is never a hit. Temp
// files end in ".tmp" so Go's trim ignores them and ours removes stale ones.
//
// All I/O here is synchronous on purpose: a local get is three small
// syscalls, and doing them inline beats a round trip through a thread pool.

import {
  closeSync,
  copyFileSync,
  ftruncateSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
  type Stats,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** An output in the store: what a hit tells the go command. */
export interface StoredOutput {
  outputID: string; // hex
  size: number;
  /** When the entry was put, in Unix nanoseconds. */
  timeNanos: bigint;
  /** The output file; it outlives this process (go list -export reads it later). */
  diskPath: string;
}

export const ENTRY_SIZE = 2 + 1 + 64 + 1 + 64 + 1 + 20 + 1 + 20 + 1;
const HOUR = 3600_000;
const DAY = 24 * HOUR;
/** Go refreshes an mtime on use at most once per hour (mtimeInterval). */
const MTIME_INTERVAL = HOUR;
/** Go trims at most once a day (trimInterval)... */
const TRIM_INTERVAL = DAY;
/** ...entries unused for 5 days (trimLimit), plus one mtimeInterval of slack. */
const TRIM_LIMIT = 5 * DAY + MTIME_INTERVAL;
/** A temp file this old belongs to a writer that died. */
const STALE_TEMP = HOUR;

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

/** A put (or download) being written into the store. */
export interface DiskPut {
  write(bytes: Uint8Array): void;
  /** Moves the output and then the entry into place; returns the hit. */
  commit(timeNanos?: bigint): StoredOutput;
  abort(): void;
  readonly written: number;
}

export interface TrimReport {
  skipped: boolean;
  removedFiles: number;
  removedBytes: number;
  keptBytes: number;
}

export interface DiskStore {
  readonly dir: string;
  get(actionID: string): StoredOutput | null;
  put(actionID: string, outputID: string, size: number): DiskPut;
  /** Go-style trim (once a day) plus the size cap; cheap when nothing is due. */
  trim(opts?: { force?: boolean }): TrimReport;
  /** Bytes written by this process (outputs and entries). */
  readonly bytesWritten: number;
}

let tempSeq = 0;

export function formatEntry(actionID: string, outputID: string, size: number, timeNanos: bigint): string {
  return `v1 ${actionID} ${outputID} ${String(size).padStart(20)} ${String(timeNanos).padStart(20)}\n`;
}

/** Parses an entry file; null if it is not a valid entry for actionID. */
export function parseEntry(
  buf: Buffer,
  n: number,
  actionID: string,
): { outputID: string; size: number; timeNanos: bigint } | null {
  if (n !== ENTRY_SIZE) return null;
  const s = buf.toString("latin1", 0, n);
  if (!s.startsWith("v1 ") || s[67] !== " " || s[132] !== " " || s[153] !== " " || s[174] !== "\n") return null;
  if (s.slice(3, 67) !== actionID) return null;
  const outputID = s.slice(68, 132);
  if (!/^[0-9a-f]{64}$/.test(outputID)) return null;
  const size = Number(s.slice(133, 153).trim());
  const t = s.slice(154, 174).trim();
  if (!Number.isSafeInteger(size) || size < 0 || !/^\d+$/.test(t)) return null;
  return { outputID, size, timeNanos: BigInt(t) };
}

export function nowNanos(ms = Date.now()): bigint {
  return BigInt(ms) * 1_000_000n;
}

export function createDiskStore(opts: DiskStoreOptions): DiskStore {
  const dir = opts.dir;
  const now = opts.now ?? Date.now;
  const overflowDir = opts.overflowDir ?? join(tmpdir(), `gostash-overflow-${process.getuid?.() ?? "user"}`);
  const madeDirs = new Set<string>();
  let bytesWritten = 0;

  // IDs are validated hex, so plain concatenation is a safe (and, on the
  // hot path, measurably cheaper) way to build paths than path.join.
  const base = join(dir, "/");
  const subdir = (id: string) => base + id.slice(0, 2);
  const entryBuf = Buffer.allocUnsafe(ENTRY_SIZE + 1);

  function ensureSubdir(id: string): string {
    const sub = subdir(id);
    if (!madeDirs.has(sub)) {
      mkdirSync(sub, { recursive: true });
      madeDirs.add(sub);
    }
    return sub;
  }

  function markUsed(path: string, mtimeMs: number, t: number): void {
    if (t - mtimeMs >= MTIME_INTERVAL) {
      try {
        const d = new Date(t);
        utimesSync(path, d, d);
      } catch {
        // best effort, as in Go
      }
    }
  }

  // The hot path of a warm build: about a thousand of these in 0.2 s. One
  // read of the entry and two stats through Bun.file (cheaper in Bun than
  // fs.statSync, which builds a Stats object with Dates).
  function get(actionID: string): StoredOutput | null {
    const entryPath = `${base}${actionID.slice(0, 2)}/${actionID}-a`;
    let n: number;
    try {
      // One read into a reused buffer (one byte more than an entry, to see
      // a file that is too long) instead of readFileSync's read-to-EOF.
      const fd = openSync(entryPath, "r");
      try {
        n = readSync(fd, entryBuf, 0, ENTRY_SIZE + 1, 0);
      } finally {
        closeSync(fd);
      }
    } catch {
      return null;
    }
    const e = parseEntry(entryBuf, n, actionID);
    if (!e) return null;
    let outPath = `${base}${e.outputID.slice(0, 2)}/${e.outputID}-d`;
    const out = Bun.file(outPath);
    let size = out.size;
    let mtime = out.lastModified;
    if (size !== e.size || (size === 0 && !existsSync(outPath))) {
      // Missing, truncated, or a Go 1.26 executable entry: a directory with
      // one named file in it.
      try {
        const st = statSync(outPath);
        if (!st.isDirectory()) return null;
        const names = readdirSync(outPath);
        if (names.length !== 1) return null;
        markUsed(outPath, st.mtimeMs, now());
        outPath = join(outPath, names[0]!);
        const inner = statSync(outPath);
        size = inner.size;
        mtime = inner.mtimeMs;
      } catch {
        return null;
      }
      if (size !== e.size) return null;
    }
    const t = now();
    markUsed(outPath, mtime, t);
    markUsed(entryPath, Bun.file(entryPath).lastModified, t);
    return { outputID: e.outputID, size: e.size, timeNanos: e.timeNanos, diskPath: outPath };
  }

  function writeAtomic(sub: string, name: string, data: string | Uint8Array): void {
    const tmp = join(sub, `${name}.${process.pid}.${++tempSeq}.tmp`);
    try {
      writeFileSync(tmp, data);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      mkdirSync(sub, { recursive: true });
      writeFileSync(tmp, data);
    }
    try {
      renameSync(tmp, join(sub, name));
    } catch (err) {
      try {
        unlinkSync(tmp);
      } catch {}
      throw err;
    }
  }

  // A full disk (ENOSPC), a read-only or foreign-owned cache directory must
  // not fail the build: `go` needs a DiskPath holding the output even when
  // nothing can be cached (go vet and go list -export fail without it). So
  // the output goes to the overflow directory instead, no entry is written
  // (later gets miss), and the owner is told once through onTrouble.
  let overflowReady = false;
  function overflowTemp(outputID: string): string {
    if (!overflowReady) {
      mkdirSync(overflowDir, { recursive: true, mode: 0o700 });
      overflowReady = true;
    }
    return join(overflowDir, `${outputID}-d.${process.pid}.${++tempSeq}.tmp`);
  }

  function openTemp(outputID: string): { path: string; fd: number; overflow: boolean } {
    const sub = subdir(outputID);
    const path = `${sub}/${outputID}-d.${process.pid}.${++tempSeq}.tmp`;
    try {
      ensureSubdir(outputID);
      return { path, fd: openSync(path, "w", 0o644), overflow: false };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") {
        // `go clean -cache` may have removed the subdirectory under a daemon.
        madeDirs.delete(sub);
        try {
          ensureSubdir(outputID);
          return { path, fd: openSync(path, "w", 0o644), overflow: false };
        } catch (err2) {
          err = err2;
        }
      }
      if (!isDiskTrouble(err)) throw err;
      opts.onTrouble?.(err as Error);
      const o = overflowTemp(outputID);
      return { path: o, fd: openSync(o, "w", 0o600), overflow: true };
    }
  }

  function put(actionID: string, outputID: string, size: number): DiskPut {
    let t: { path: string; fd: number; overflow: boolean } | null = openTemp(outputID);
    let written = 0;
    const cleanup = () => {
      if (!t) return;
      try {
        closeSync(t.fd);
      } catch {}
      try {
        unlinkSync(t.path);
      } catch {}
      t = null;
    };
    /** Moves what was written so far to the overflow directory. */
    const spill = (err: unknown, extra: number) => {
      opts.onTrouble?.(err as Error);
      const old = t!;
      const o = overflowTemp(outputID);
      copyFileSync(old.path, o);
      closeSync(old.fd);
      try {
        unlinkSync(old.path);
      } catch {}
      const fd = openSync(o, "r+");
      ftruncateSync(fd, written + extra);
      t = { path: o, fd, overflow: true };
    };
    return {
      get written() {
        return written;
      },
      write(bytes) {
        if (!t) throw new Error("disk store: write after commit or abort");
        let off = 0;
        while (off < bytes.length) {
          try {
            off += writeSync(t.fd, bytes, off, bytes.length - off, written + off);
          } catch (err) {
            if (t.overflow || !isDiskTrouble(err)) throw err;
            spill(err, off);
          }
        }
        written += bytes.length;
      },
      commit(timeNanos = nowNanos(now())) {
        if (!t) throw new Error("disk store: commit after commit or abort");
        const cur = t;
        try {
          if (written !== size) throw new Error(`disk store: wrote ${written} bytes, expected ${size}`);
          closeSync(cur.fd);
        } catch (err) {
          cleanup();
          throw err;
        }
        t = null;
        const hit = { outputID, size, timeNanos, diskPath: "" };
        if (cur.overflow) {
          hit.diskPath = join(overflowDir, `${outputID}-d`);
          renameSync(cur.path, hit.diskPath);
          return hit;
        }
        hit.diskPath = `${base}${outputID.slice(0, 2)}/${outputID}-d`;
        try {
          renameSync(cur.path, hit.diskPath);
        } catch (err) {
          try {
            unlinkSync(cur.path);
          } catch {}
          throw err;
        }
        try {
          writeAtomic(ensureSubdir(actionID), `${actionID}-a`, formatEntry(actionID, outputID, size, timeNanos));
          bytesWritten += size + ENTRY_SIZE;
        } catch (err) {
          // The output is in place and complete: serve it; only the entry
          // (and so a later hit) is lost.
          if (!isDiskTrouble(err)) throw err;
          opts.onTrouble?.(err as Error);
        }
        return hit;
      },
      abort: cleanup,
    };
  }

  function trim(o: { force?: boolean } = {}): TrimReport {
    const t = now();
    const report: TrimReport = { skipped: true, removedFiles: 0, removedBytes: 0, keptBytes: 0 };
    const trimFile = join(dir, "trim.txt");
    const usageFile = join(dir, "gostash-usage.json");
    let lastTrim = 0;
    try {
      lastTrim = Number(readFileSync(trimFile, "latin1").trim()) * 1000;
    } catch {}
    const dueByAge = o.force || !(t - lastTrim < TRIM_INTERVAL && t - lastTrim > -MTIME_INTERVAL);
    let overCap = false;
    if (opts.maxSize) {
      let usage = -1;
      try {
        usage = JSON.parse(readFileSync(usageFile, "utf8")).bytes;
      } catch {}
      overCap = usage < 0 || usage + bytesWritten > opts.maxSize;
    }
    if (!dueByAge && !overCap) return report;
    report.skipped = false;
    if (dueByAge) {
      try {
        writeFileSync(trimFile, String(Math.floor(t / 1000)));
      } catch {}
    }
    const cutoff = t - (opts.expiryMs ? opts.expiryMs + MTIME_INTERVAL : TRIM_LIMIT);
    const live: { path: string; size: number; mtime: number }[] = [];
    for (let i = 0; i < 256; i++) {
      const sub = join(dir, i.toString(16).padStart(2, "0"));
      let names: string[];
      try {
        names = readdirSync(sub);
      } catch {
        continue;
      }
      for (const name of names) {
        const isTemp = name.endsWith(".tmp");
        if (!isTemp && !name.endsWith("-a") && !name.endsWith("-d")) continue;
        const path = join(sub, name);
        let st: Stats;
        try {
          st = statSync(path);
        } catch {
          continue;
        }
        const old = isTemp ? st.mtimeMs < t - STALE_TEMP : dueByAge && st.mtimeMs < cutoff;
        if (old) {
          if (removePath(path, st)) {
            report.removedFiles++;
            report.removedBytes += st.size;
          }
        } else if (!isTemp) {
          live.push({ path, size: st.isDirectory() ? dirSize(path) : st.size, mtime: st.mtimeMs });
        }
      }
    }
    let total = live.reduce((a, f) => a + f.size, 0);
    if (opts.maxSize && total > opts.maxSize) {
      // Evict least recently used first, down to 90% so we do not trim on every run.
      const target = opts.maxSize * 0.9;
      live.sort((a, b) => a.mtime - b.mtime);
      for (const f of live) {
        if (total <= target) break;
        if (removePath(f.path)) {
          total -= f.size;
          report.removedFiles++;
          report.removedBytes += f.size;
        }
      }
    }
    report.keptBytes = total;
    bytesWritten = 0;
    try {
      writeFileSync(usageFile, JSON.stringify({ bytes: total, at: t }));
    } catch {}
    return report;
  }

  return {
    dir,
    get,
    put,
    trim,
    get bytesWritten() {
      return bytesWritten;
    },
  };
}

const DISK_TROUBLE = new Set(["ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EIO", "EFBIG"]);

/** Errors that mean "this directory cannot take more data", not a bug. */
export function isDiskTrouble(err: unknown): boolean {
  return DISK_TROUBLE.has((err as NodeJS.ErrnoException)?.code ?? "");
}

function removePath(path: string, st?: Stats): boolean {
  try {
    if ((st ?? statSync(path)).isDirectory()) {
      rmSync(path, { recursive: true, force: true });
    } else unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

function dirSize(path: string): number {
  let n = 0;
  try {
    for (const name of readdirSync(path)) n += statSync(join(path, name)).size;
  } catch {}
  return n;
}
