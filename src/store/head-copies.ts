// The pack heads this machine last read or wrote (layout of a head:
// packs.ts), kept in the local cache directory so that a later go command
// that used nothing new learns it without asking the bucket:
//
//   <cache dir>/gostash-packs/heads/<bucket>/<key>.head
//       the head's bytes as they are in the bucket; <bucket> is the first
//       16 hex digits of the SHA-256 of the endpoint, bucket and prefix
//       (keys do not depend on them: a cache directory used with two
//       buckets or prefixes must not take one's heads for the other's)
//
// Why: without them every plugin-mode command with a bucket read the head
// at its start, only to find at close that there was nothing to pack (a
// warm laptop build: one GET and the credential chain loaded, on the main
// thread while the go command waits, for nothing). A copy is trusted for
// as long as its mtime is recent (the caller's ttl): a head replaced in the
// bucket since (another machine compacted) is seen once the copy is that
// old. Writes are a temp file and a rename, so parallel go commands only
// ever read a whole copy; any failure just means no copy.
//
// A copy is rewritten whenever its head is read or written again, so one a
// day old is of no use to anyone (the caller trusts copies for an hour):
// sweepHeadCopies removes those, and temp files a crash left, with the
// cache's daily trim. Keys change with the commands and the code they
// build, so without it every key a machine ever used kept its copy.

import { mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { namesIn } from "../util/names-in.ts";

/** The copies' directory for one bucket: `where` names its endpoint, bucket and prefix. */
export function headCopiesDir(packFilesDir: string, where: string): string {
  return join(packFilesDir, "heads", createHash("sha256").update(where).digest("hex").slice(0, 16));
}

function copyPath(dir: string, key: string): string {
  return join(dir, `${key}.head`);
}

/** When the copy of key's head was written (Unix ms), or null if there is none. */
export function headCopyTime(dir: string, key: string): number | null {
  return statSync(copyPath(dir, key), { throwIfNoEntry: false })?.mtimeMs ?? null;
}

/** The copy's bytes, or null if there is none (or it cannot be read). */
export function readHeadCopy(dir: string, key: string): Uint8Array | null {
  try {
    return new Uint8Array(readFileSync(copyPath(dir, key)));
  } catch {
    return null;
  }
}

/** Replaces the copy of key's head; false if the disk would not take it. */
export function saveHeadCopy(dir: string, key: string, bytes: Uint8Array): boolean {
  const tmp = join(dir, `${key}.${process.pid}.${++seq}.tmp`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(tmp, bytes);
    renameSync(tmp, copyPath(dir, key));
    return true;
  } catch {
    dropFile(tmp);
    return false;
  }
}

/** Removes the copy (it did not decode, or names another key). */
export function dropHeadCopy(dir: string, key: string): void {
  dropFile(copyPath(dir, key));
}

function dropFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {}
}

let seq = 0;

const DAY_MS = 24 * 3600_000;

/** Removes copies (and temp files) not written for a day, for every bucket; how many went. */
export function sweepHeadCopies(packFilesDir: string, now = Date.now()): number {
  const heads = join(packFilesDir, "heads");
  let n = 0;
  for (const bucket of namesIn(heads)) {
    const dir = join(heads, bucket);
    for (const name of namesIn(dir)) {
      const path = join(dir, name);
      const mtime = statSync(path, { throwIfNoEntry: false })?.mtimeMs;
      if (mtime === undefined || mtime >= now - DAY_MS || !(name.endsWith(".head") || name.endsWith(".tmp"))) continue;
      dropFile(path);
      n++;
    }
  }
  return n;
}

