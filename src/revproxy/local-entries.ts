// Cached responses on the local disk, in <cache-dir>/revproxy/<xx>/<key>
// (the file format is in entry-file.ts; keys in keys.ts). The build
// cache's trim and `go clean -cache` never look here (they handle the
// 00..ff directories of the cache directory itself, not of revproxy/).
//
// Reads are verified: before an entry is served its body is hashed and
// compared with its head. A verified file is remembered by its inode,
// size, mtime and ctime, so a hot entry is hashed once per process; any
// write to the file changes its ctime and makes it verified again. A file
// that fails is deleted and counted (revproxy_integrity_failures): the
// request becomes a miss and is fetched again.
//
// Use refreshes an entry's mtime at most hourly (as the go command does for
// its own cache); trim() removes entries unused for --expiry, and temp
// files left by a crash.

import { mkdirSync, readdirSync, renameSync, rmSync, statSync, utimesSync, type Stats } from "node:fs";
import { open } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { bodyOffset, hashRange, readEntryHeader, type EntryHead, type EntryMeta } from "./entry-file.ts";
import { localPath } from "./keys.ts";

export interface LocalHit {
  path: string;
  head: EntryHead;
  meta: EntryMeta;
  /** Where the body starts in the file. */
  bodyStart: number;
}

const TOUCH_EVERY_MS = 3_600_000;
const STALE_TEMP_MS = 86_400_000;
/** Verified files remembered at once. */
const MAX_VERIFIED = 65_536;

const statKey = (s: Stats): string => `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;

export class LocalEntries {
  private readonly verified = new Map<string, string>();
  private tempSeq = 0;
  private warnedIntegrity = false;

  constructor(
    readonly dir: string,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  pathOf(key: string): string {
    return localPath(this.dir, key);
  }

  /** A temp file name next to the entry's final place (its directory made). */
  tempFor(key: string): string {
    const path = this.pathOf(key);
    mkdirSync(dirname(path), { recursive: true });
    return `${path}.${process.pid}.${++this.tempSeq}.tmp`;
  }

  /** The verified entry, or null (missing, incomplete or corrupt: then deleted). */
  async lookup(key: string): Promise<LocalHit | null> {
    const path = this.pathOf(key);
    let fh;
    try {
      fh = await open(path, "r");
    } catch {
      return null;
    }
    try {
      const st = await fh.stat();
      const header = await readEntryHeader(fh, st.size);
      if (!header) return this.reject(path, "not a complete entry");
      const bodyStart = bodyOffset(header.head);
      if (this.verified.get(path) !== statKey(st)) {
        const sum = await hashRange(fh, bodyStart, header.head.size);
        if (sum !== header.head.sha256) return this.reject(path, `body SHA-256 ${sum} is not the ${header.head.sha256} it was stored with`);
        this.remember(path, st);
      }
      this.touch(path, st);
      return { path, ...header, bodyStart };
    } finally {
      await fh.close().catch(() => {});
    }
  }

  /** Moves a finished temp file into place; the bytes were hashed on the way in. */
  commit(tmp: string, key: string): string {
    const path = this.pathOf(key);
    renameSync(tmp, path);
    try {
      this.remember(path, statSync(path));
    } catch {}
    return path;
  }

  discard(tmp: string): void {
    rmSync(tmp, { force: true });
  }

  private remember(path: string, st: Stats): void {
    this.verified.delete(path);
    this.verified.set(path, statKey(st));
    if (this.verified.size > MAX_VERIFIED) this.verified.delete(this.verified.keys().next().value!);
  }

  private touch(path: string, st: Stats): void {
    if (Date.now() - st.mtimeMs < TOUCH_EVERY_MS) return;
    try {
      const now = new Date();
      utimesSync(path, now, now);
      this.remember(path, statSync(path));
    } catch {}
  }

  private reject(path: string, why: string): null {
    this.metrics.inc("revproxy_integrity_failures");
    this.verified.delete(path);
    rmSync(path, { force: true });
    const message = `revproxy: ${path}: ${why}; deleted, will fetch it again`;
    if (this.warnedIntegrity) this.logger.debug(message);
    else {
      this.warnedIntegrity = true;
      this.logger.warn(`${message} (later ones are counted in revproxy_integrity_failures)`);
    }
    return null;
  }

  /** Removes entries unused for expiryMs and temp files a crash left. Returns how many. */
  trim(expiryMs: number, now = Date.now()): number {
    let removed = 0;
    for (const sub of safeReaddir(this.dir)) {
      if (!/^[0-9a-f]{2}$/.test(sub)) continue;
      const d = join(this.dir, sub);
      for (const name of safeReaddir(d)) {
        const p = join(d, name);
        try {
          const age = now - statSync(p).mtimeMs;
          if (name.endsWith(".tmp") ? age > STALE_TEMP_MS : expiryMs > 0 && age > expiryMs) {
            rmSync(p, { force: true });
            this.verified.delete(p);
            removed++;
          }
        } catch {}
      }
    }
    return removed;
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
