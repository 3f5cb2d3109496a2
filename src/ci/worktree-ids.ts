// Which object ID each tracked entry's work-tree copy has now, for
// `ci mtimes`. The index has it for every file git has checked and found
// unchanged (no hashing: the common case of a fresh checkout); a file that
// differs, or that git does not check (assume-unchanged, skip-worktree),
// is hashed afresh by `git hash-object`.
//
// When in doubt an entry gets no ID, and so keeps the time it has: a time
// that belongs to other content would make `go test` serve a stale result,
// while no time only costs a cache miss. So an entry whose work-tree copy is
// another kind than git tracks (a file replaced by a directory or a
// symlink, a symlink by a file) is left alone, as is one git cannot hash.

import { lstatSync, readlinkSync, type Stats } from "node:fs";
import { join } from "node:path";
import { hashWorkTreeFiles, MODE_GITLINK, MODE_SYMLINK, modifiedPaths, symlinkBlobID, type IndexEntry } from "./git.ts";

/** A tracked entry with the object ID its current content has. */
export interface Timed {
  path: string;
  mode: string;
  oid: string;
}

/** What looking at the work tree found, added up over a run (part of its report). */
export interface WorkTreeTally {
  /** Files whose work-tree content differs from the index: timed from their own content. */
  modified: number;
  /** Tracked but not in the work tree (deleted, sparse checkout). */
  absent: number;
  /** Tracked, but left as they are: another kind of file than git tracks, or a name that is not UTF-8. */
  untimed: number;
  /** Could not be set or hashed (permissions, ...), with the reason. */
  failed: { path: string; why: string }[];
}

/** The entries with IDs for what is in the work tree now, and the paths left untimed (present, but of another kind). */
export function currentIDs(
  dir: string,
  entries: IndexEntry[],
  format: "sha1" | "sha256",
  tally: WorkTreeTally,
): { timed: Timed[]; untimed: string[] } {
  const modified = modifiedPaths(dir);
  const timed: Timed[] = [];
  const untimed: string[] = [];
  const toHash: IndexEntry[] = [];
  for (const e of entries) {
    if (!modified.has(e.path) && !e.flagged && e.oid !== "") {
      timed.push({ path: e.path, mode: e.mode, oid: e.oid });
      continue;
    }
    const st = lstatOrNull(join(dir, e.path));
    if (!st) tally.absent++;
    else if (!sameKind(st, e) || (e.mode === MODE_GITLINK && e.oid === "")) {
      tally.untimed++;
      untimed.push(e.path);
    } else if (e.mode === MODE_GITLINK) timed.push({ path: e.path, mode: e.mode, oid: e.oid });
    else if (e.mode === MODE_SYMLINK) addLink(dir, e, format, timed, tally);
    else toHash.push(e);
  }
  addHashed(dir, toHash, timed, tally);
  return { timed, untimed };
}

/**
 * Is the work-tree copy the kind of thing git tracks with this mode? git
 * would hash a symlink's target for a file and fail on a directory; a file
 * where a symlink was has no link target.
 */
function sameKind(st: Stats, e: IndexEntry): boolean {
  if (e.mode === MODE_SYMLINK) return st.isSymbolicLink();
  if (e.mode === MODE_GITLINK) return st.isDirectory();
  return st.isFile();
}

/** A symlink's ID from its target's bytes (names that are not UTF-8 included). */
function addLink(dir: string, e: IndexEntry, format: "sha1" | "sha256", timed: Timed[], tally: WorkTreeTally): void {
  let target: Buffer;
  try {
    target = readlinkSync(join(dir, e.path), { encoding: "buffer" });
  } catch (err) {
    tally.failed.push({ path: e.path, why: `readlink: ${(err as Error).message}` });
    return;
  }
  const oid = symlinkBlobID(target, format);
  if (oid !== e.oid) tally.modified++;
  timed.push({ path: e.path, mode: e.mode, oid });
}

/** Files hashed by git, in one process; one git cannot hash is reported and left untimed. */
function addHashed(dir: string, files: IndexEntry[], timed: Timed[], tally: WorkTreeTally): void {
  hashWorkTreeFiles(
    dir,
    files.map((e) => e.path),
  ).forEach((h, i) => {
    const e = files[i]!;
    if ("error" in h) return void tally.failed.push({ path: e.path, why: h.error });
    // A flagged or re-stat'ed file may turn out unchanged: only a new ID counts as modified.
    if (h.oid !== e.oid) tally.modified++;
    timed.push({ path: e.path, mode: e.mode, oid: h.oid });
  });
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}
