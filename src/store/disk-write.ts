// One output being written into the local store (disk.ts): a temp file in
// the output's subdirectory, then output and entry renamed into place, the
// output first, so an interrupted write is never a hit. A write the cache
// directory cannot take (full, read-only, gone under us) moves to the
// overflow directory (disk-overflow.ts) with the bytes written so far.

import { closeSync, copyFileSync, ftruncateSync, openSync, readSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { ENTRY_SIZE, isDiskTrouble, type StoredOutput } from "./disk-layout.ts";
import type { OverflowDir } from "./disk-overflow.ts";

/** A put (or download) being written into the store. */
export interface DiskPut {
  write(bytes: Uint8Array): void;
  /** Moves the output and then the entry into place; returns the stored output. */
  commit(timeNanos?: bigint): StoredOutput;
  abort(): void;
  readonly written: number;
}

/** A temp file being written: in the cache directory, or in the overflow directory. */
export interface Temp {
  path: string;
  fd: number;
  overflow: boolean;
}

/** What the store lends a write. */
export interface WriteTarget {
  readonly overflow: OverflowDir;
  readonly nowNanos: bigint;
  bytesWritten: number;
  finalPath(outputID: string): string;
  writeEntry(actionID: string, outputID: string, size: number, timeNanos: bigint): void;
  trouble(err: unknown): void;
}

/** One output being written: temp file, then output and entry renamed into place. */
export class DiskWrite implements DiskPut {
  written = 0;

  constructor(
    private readonly store: WriteTarget,
    private readonly actionID: string,
    private readonly outputID: string,
    private readonly size: number,
    private temp: Temp | null,
  ) {}

  write(bytes: Uint8Array): void {
    if (!this.temp) throw new Error("disk store: write after commit or abort");
    let off = 0;
    while (off < bytes.length) {
      try {
        off += writeSync(this.temp.fd, bytes, off, bytes.length - off, this.written + off);
      } catch (err) {
        if (this.temp.overflow || !isDiskTrouble(err)) throw err;
        this.spill(err, off);
      }
    }
    this.written += bytes.length;
  }

  /** Moves what was written so far to the overflow directory. */
  private spill(err: unknown, extra: number): void {
    this.store.trouble(err);
    const old = this.temp!;
    const o = this.store.overflow.pathFor(this.outputID);
    copyFileSync(old.path, o);
    closeSync(old.fd);
    unlinkQuietly(old.path);
    const fd = openSync(o, "r+");
    ftruncateSync(fd, this.written + extra);
    this.temp = { path: o, fd, overflow: true };
  }

  commit(timeNanos = this.store.nowNanos): StoredOutput {
    const cur = this.temp;
    if (!cur) throw new Error("disk store: commit after commit or abort");
    if (this.written !== this.size) {
      this.abort();
      throw new Error(`disk store: wrote ${this.written} bytes, expected ${this.size}`);
    }
    this.temp = null;
    const out: StoredOutput = { outputID: this.outputID, size: this.size, timeNanos, diskPath: "" };
    if (cur.overflow) {
      // Its own file, for this write alone (disk-overflow.ts): no rename.
      closeOrAbort(cur);
      out.diskPath = cur.path;
      return out;
    }
    out.diskPath = this.store.finalPath(this.outputID);
    // The file stays open through the rename: if its directory went away
    // meanwhile (`go clean -cache`), its bytes are still there to pass on.
    try {
      renameSync(cur.path, out.diskPath);
    } catch (err) {
      if (!isDiskTrouble(err)) {
        this.closeAndRemove(cur);
        throw err;
      }
      out.diskPath = this.rescue(cur, err);
      return out;
    }
    closeOrAbort(cur, out.diskPath);
    this.commitEntry(timeNanos);
    return out;
  }

  /** The temp file could not be renamed into place: its bytes, read from the open file, go to the overflow directory. */
  private rescue(cur: Temp, err: unknown): string {
    this.store.trouble(err);
    const o = this.store.overflow.pathFor(this.outputID);
    try {
      copyFromFd(cur.fd, this.size, o);
    } finally {
      this.closeAndRemove(cur);
    }
    return o;
  }

  private closeAndRemove(t: Temp): void {
    try {
      closeSync(t.fd);
    } catch {}
    unlinkQuietly(t.path);
  }

  /** The entry after the output: without it the output is only a DiskPath, never a later hit. */
  private commitEntry(timeNanos: bigint): void {
    try {
      this.store.writeEntry(this.actionID, this.outputID, this.size, timeNanos);
      this.store.bytesWritten += this.size + ENTRY_SIZE;
    } catch (err) {
      // The output is in place and complete: serve it; only the entry
      // (and so a later hit) is lost.
      if (!isDiskTrouble(err)) throw err;
      this.store.trouble(err);
    }
  }

  abort(): void {
    const t = this.temp;
    if (!t) return;
    this.temp = null;
    try {
      closeSync(t.fd);
    } catch {}
    unlinkQuietly(t.path);
  }
}

/** Closes a written file; if that fails (a deferred write error), the file at `placed` (or the temp) is not trusted and goes. */
function closeOrAbort(t: Temp, placed = t.path): void {
  try {
    closeSync(t.fd);
  } catch (err) {
    unlinkQuietly(placed);
    throw err;
  }
}

/** Copies the first `size` bytes of an open file into a new file at `dest`. */
function copyFromFd(fd: number, size: number, dest: string): void {
  const out = openSync(dest, "wx", 0o600);
  try {
    const buf = Buffer.allocUnsafe(Math.min(size, 1 << 20) || 1);
    for (let off = 0; off < size; ) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, size - off), off);
      if (n === 0) throw new Error(`disk store: the temp file ended at ${off} of ${size} bytes`);
      for (let w = 0; w < n; ) w += writeSync(out, buf, w, n - w);
      off += n;
    }
  } finally {
    closeSync(out);
  }
}

export function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {}
}
