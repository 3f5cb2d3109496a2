// The module proxy's disk store. Its layout IS the GOPROXY URL layout
// (module/layout.ts builds the paths), so the directory can be handed to
// the go command as GOPROXY=file://<dir>, and it is the layout of
// $GOMODCACHE/cache/download (copy either way):
//
//   <dir>/<escaped module>/@v/<escaped version>.info   kept forever (canonical versions)
//   <dir>/<escaped module>/@v/<escaped version>.mod    kept forever
//   <dir>/<escaped module>/@v/<escaped version>.zip    kept forever
//   <dir>/<escaped module>/@v/list                     refreshed after --modproxy-list-ttl
//   <dir>/<escaped module>/@latest                     refreshed after --modproxy-list-ttl
//   <dir>/sumdb/<name>/supported                       empty; lets file:// users proxy the sumdb too
//   <dir>/sumdb/<name>/lookup/<escaped module>@<escaped version>   forever
//   <dir>/sumdb/<name>/tile/<H>/<L>/<NNN>[...]                      full tiles forever
//   <dir>/sumdb/<name>/tile/<H>/<L>/<NNN>.p/<W>, .../latest         refreshed briefly
//
// "Escaped" is module.EscapePath / EscapeVersion: every upper-case letter
// becomes "!" + its lower-case form (github.com/BurntSushi -> github.com/!burnt!sushi).
// Names are the request's path decoded once, never percent-escaped: a
// query "a#b" or "%41" is asked as "a%23b" or "%2541" and keyed "a#b" or
// "%41", so two requests share a name only when they ask the same thing;
// module/layout.ts urlPathOf escapes a name again for an upstream's URL.
// The freshness of list, @latest, latest and partial tiles is their file
// modification time. Queries that are not canonical versions (branch names,
// "master.info") are not written here: they live in memory for the list TTL.
//
// Every write goes to "<final>.<random>.tmp" in the same directory and is
// renamed into place, so readers (this daemon, or the go command reading
// the directory over file://) never see a partial file. Leftover .tmp files
// from a crash are never served and can be deleted at any time.

import { mkdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { mkdir, rename, stat, unlink, writeFile } from "node:fs/promises";
import { dirname, resolve, sep } from "node:path";

export interface StoredFile {
  path: string;
  size: number;
  mtimeMs: number;
}

export class ModStore {
  readonly dir: string;
  /** Directories known to exist (saves a mkdir per write). */
  private readonly made = new Set<string>();

  constructor(dir: string) {
    this.dir = resolve(dir);
    mkdirSync(this.dir, { recursive: true });
  }

  /**
   * Absolute path of a relative URL-layout path. The callers only pass
   * paths built from validated elements; this is the last line of defence.
   */
  path(rel: string): string {
    const p = resolve(this.dir, rel);
    if (!p.startsWith(this.dir + sep)) throw new Error(`modproxy store: path escapes the cache: ${JSON.stringify(rel)}`);
    return p;
  }

  async stat(rel: string): Promise<StoredFile | null> {
    const path = this.path(rel);
    try {
      const s = await stat(path);
      return s.isFile() ? { path, size: s.size, mtimeMs: s.mtimeMs } : null;
    } catch {
      return null;
    }
  }

  statSync(rel: string): StoredFile | null {
    const path = this.path(rel);
    try {
      const s = statSync(path);
      return s.isFile() ? { path, size: s.size, mtimeMs: s.mtimeMs } : null;
    } catch {
      return null;
    }
  }

  /** A fresh temporary path next to the final one (same file system: rename is atomic). */
  tempFor(rel: string): string {
    const final = this.path(rel);
    this.ensureDirSync(dirname(final));
    return `${final}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  }

  private ensureDirSync(dir: string): void {
    if (this.made.has(dir)) return;
    mkdirSync(dir, { recursive: true });
    this.remember(dir);
  }

  private remember(dir: string): void {
    // Someone may delete directories under us (cleaning the cache by
    // hand): a write that fails with ENOENT forgets them and retries.
    if (this.made.size > 50_000) this.made.clear();
    this.made.add(dir);
  }

  /** Forgets every directory (after ENOENT: the cache was cleaned under us). */
  forgetDirs(): void {
    this.made.clear();
  }

  /** Moves a finished temp file into place. */
  async commit(tmp: string, rel: string): Promise<void> {
    await rename(tmp, this.path(rel));
  }

  commitSync(tmp: string, rel: string): void {
    renameSync(tmp, this.path(rel));
  }

  async discard(tmp: string): Promise<void> {
    await unlink(tmp).catch(() => {});
  }

  /** Writes a small file atomically. */
  async write(rel: string, data: Uint8Array | string): Promise<void> {
    const final = this.path(rel);
    const dir = dirname(final);
    if (!this.made.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.remember(dir);
    }
    const tmp = `${final}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    try {
      await writeFile(tmp, data);
      await rename(tmp, final);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      if ((err as NodeJS.ErrnoException).code === "ENOENT" && this.made.delete(dir)) return this.write(rel, data);
      throw err;
    }
  }

  writeSync(rel: string, data: Uint8Array | string): void {
    const final = this.path(rel);
    this.ensureDirSync(dirname(final));
    const tmp = `${final}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    try {
      writeFileSync(tmp, data);
      renameSync(tmp, final);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
  }
}
