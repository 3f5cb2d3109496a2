// Cached responses on the local disk, in <cache-dir>/revproxy/<xx>/<key>
// (the file format is in entry-file.ts; keys in keys.ts). The build
// cache's trim and `go clean -cache` never look here (they handle the
// 00..ff directories of the cache directory itself, not of revproxy/).
//
// Reads are verified: before an entry is served its body is hashed and
// compared with its head. A verified entry is remembered (its head and
// meta, and its file's inode, size, mtime and ctime), so a hot entry costs
// one stat() per hit and is hashed once per process; any write to the file
// changes its ctime and makes it read and verified again, except one in
// the same tick of the file system's clock (util/racy.ts): an entry whose
// file changed just before it was verified is hashed again on its next
// hit, until its last change is old enough to be told from a new one. A
// file that
// fails is deleted and counted (revproxy_integrity_failures): the request
// becomes a miss and is fetched again.
//
// Use refreshes an entry's mtime at most hourly (as the go command does for
// its own cache); trim() removes entries unused for --expiry, and temp
// files left by a crash.

import { mkdirSync, renameSync, rmSync, statSync, utimesSync, type Stats } from "node:fs";
import { open } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { namesIn } from "../util/names-in.ts";
import { changedTooRecently } from "../util/racy.ts";
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
/** Verified entries remembered at once (a few hundred bytes each). */
const MAX_VERIFIED = 16_384;

const statKey = (s: Stats): string => `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;

interface Verified {
  hit: LocalHit;
  /** statKey of the file when it was verified. */
  stat: string;
  /** Its last change was long enough before the verification that any later one moves its ctime. */
  settled: boolean;
}

function verified(hit: LocalHit, st: Stats): Verified {
  return { hit, stat: statKey(st), settled: !changedTooRecently(st.ctimeMs) };
}

export class LocalEntries {
  /** By key, least recently used first. */
  private readonly verified = new Map<string, Verified>();
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
    const known = this.verified.get(key);
    if (known) {
      let st: Stats | null = null;
      try {
        st = statSync(known.hit.path);
      } catch {}
      if (st && known.settled && statKey(st) === known.stat) {
        this.remember(key, known);
        this.touch(key, known, st);
        return known.hit;
      }
      this.verified.delete(key);
    }
    return this.readAndVerify(key);
  }

  private async readAndVerify(key: string): Promise<LocalHit | null> {
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
      if (!header) return this.reject(key, path, "not a complete entry");
      const bodyStart = bodyOffset(header.head);
      this.metrics.inc("revproxy_local_verifications");
      const sum = await hashRange(fh, bodyStart, header.head.size);
      if (sum !== header.head.sha256) return this.reject(key, path, `body SHA-256 ${sum} is not the ${header.head.sha256} it was stored with`);
      const v = verified({ path, ...header, bodyStart }, st);
      this.remember(key, v);
      this.touch(key, v, st);
      return v.hit;
    } finally {
      await fh.close().catch(() => {});
    }
  }

  /**
   * Moves a finished temp file into place. Its body was hashed on the way
   * in and matched `head`; what is remembered is the file as stat() finds
   * it after the rename, which is only the same file if nobody wrote to it
   * in between (a test that flipped a byte the moment the file appeared
   * was served its change once in CI). The rename just changed its ctime,
   * so that memory is racy (util/racy.ts) and the first hit hashes the file anyway.
   */
  async commit(tmp: string, key: string, head: EntryHead): Promise<string> {
    const path = this.pathOf(key);
    renameSync(tmp, path);
    this.verified.delete(key);
    const fh = await open(path, "r");
    try {
      const st = await fh.stat();
      const header = await readEntryHeader(fh, st.size);
      if (header && header.head.sha256 === head.sha256 && header.head.size === head.size) {
        this.remember(key, verified({ path, ...header, bodyStart: bodyOffset(header.head) }, st));
      }
    } finally {
      await fh.close().catch(() => {});
    }
    return path;
  }

  discard(tmp: string): void {
    rmSync(tmp, { force: true });
  }

  private remember(key: string, v: Verified): void {
    this.verified.delete(key);
    this.verified.set(key, v);
    if (this.verified.size > MAX_VERIFIED) this.verified.delete(this.verified.keys().next().value!);
  }

  /** Marks use (mtime, for trim) at most hourly; our own change keeps the entry verified (hashed once more if hit right away: util/racy.ts). */
  private touch(key: string, v: Verified, st: Stats): void {
    if (Date.now() - st.mtimeMs < TOUCH_EVERY_MS) return;
    try {
      const now = new Date();
      utimesSync(v.hit.path, now, now);
      this.remember(key, verified(v.hit, statSync(v.hit.path)));
    } catch {}
  }

  private reject(key: string, path: string, why: string): null {
    this.metrics.inc("revproxy_integrity_failures");
    this.verified.delete(key);
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
    for (const sub of namesIn(this.dir)) {
      if (!/^[0-9a-f]{2}$/.test(sub)) continue;
      const d = join(this.dir, sub);
      for (const name of namesIn(d)) {
        const p = join(d, name);
        try {
          const age = now - statSync(p).mtimeMs;
          if (name.endsWith(".tmp") ? age > STALE_TEMP_MS : expiryMs > 0 && age > expiryMs) {
            rmSync(p, { force: true });
            this.verified.delete(name);
            removed++;
          }
        } catch {}
      }
    }
    return removed;
  }
}

