// `gostash ci mtimes [DIR]`: gives every file git tracks under DIR a
// modification time derived from its content, so a `go test` result cached
// on one checkout is a hit on the next.
//
// Why: the go command keys a cached test result on the size, mode and
// modification time of every file and directory the test opened (and
// refuses to cache one when an opened file changed in the last 2 seconds).
// A fresh clone gives every file the time of the clone, so every test that
// reads testdata reruns on every CI job (golang/go#58571). Here the time is a
// function of the content's git object ID: the same content has the same
// (size, mtime) on every checkout and machine, and changed content gets a
// different one. No history is needed (shallow clones work).
//
// What gets a time:
//   regular files   from their blob ID: the index's when git finds the work
//                   tree matches it, else (and for assume-unchanged and
//                   skip-worktree entries, which git does not check)
//                   `git hash-object` of the work-tree file
//   symlinks        the link itself (lutimes, never its target), from its blob ID
//   directories     that hold tracked entries, from a hash of their tracked
//                   children (name, mode, ID), computed bottom-up: a test
//                   that lists testdata/ hashes the directory's mtime too
//   submodules      checked-out ones are processed as repositories of their
//                   own; an empty (not initialised) one gets its commit's time
// Untracked and ignored files are left alone (though their presence in a
// directory a test lists still changes that test's key), and so is a
// tracked entry now of another kind (a file replaced by a directory or a
// symlink), one git cannot hash, or one whose name is not UTF-8: no time
// only costs a cache miss, a wrong one a stale test result
// (src/ci/worktree-ids.ts).
//
// The time: 2000-01-01 UTC + the first 28 bits of the ID as seconds (up to
// ~8.5 years) + the next bits modulo 1000 as milliseconds. Always years in
// the past, so never "too new" for the go command; after 1980, so zip and
// similar formats can store it; whole milliseconds, so every runtime and
// file system with ms (or finer) resolution stores it exactly. Two different
// contents of the same size collide with probability 1 in 2^28*1000 (about
// 4e-12; 1 in 2^28 on a file system with whole-second times), and then a
// test that read that file would be served a stale cached result.

import { lstatSync, lutimesSync, utimesSync } from "node:fs";
import { join, resolve } from "node:path";
import { CiError, indexEntries, MODE_GITLINK, MODE_SYMLINK, objectFormat, requireWorkTree } from "./git.ts";
import { currentIDs, type WorkTreeTally } from "./worktree-ids.ts";

/** 2000-01-01T00:00:00Z in milliseconds. */
const BASE_MS = 946_684_800_000;

/** The modification time for content with this object ID (hex), in ms since the epoch. */
export function contentTimeMs(oid: string): number {
  if (!/^[0-9a-f]{16,}$/.test(oid)) throw new CiError(`ci mtimes: not an object ID: ${JSON.stringify(oid)}`);
  const seconds = parseInt(oid.slice(0, 7), 16); // 28 bits
  const millis = parseInt(oid.slice(7, 15), 16) % 1000;
  return BASE_MS + seconds * 1000 + millis;
}

export interface MtimesReport extends WorkTreeTally {
  dir: string;
  files: number;
  symlinks: number;
  dirs: number;
  submodules: number;
  seconds: number;
}

export function setContentMtimes(dirArg: string): MtimesReport {
  const t0 = performance.now();
  const dir = resolve(dirArg);
  requireWorkTree(dir);
  const report: MtimesReport = { dir, files: 0, symlinks: 0, dirs: 0, submodules: 0, modified: 0, absent: 0, untimed: 0, failed: [], seconds: 0 };
  const rootHash = processTree(dir, report);
  if (rootHash) setTime(dir, ".", rootHash, report, false);
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}

/** Sets the times under dir (one repository); returns the hash of its tracked tree, or null if it tracks nothing. */
function processTree(dir: string, report: MtimesReport): string | null {
  const format = objectFormat(dir);
  const index = indexEntries(dir);
  report.untimed += index.undecodable;
  const { timed, untimed } = currentIDs(dir, index.entries, format, report);
  const tree = new DirTree();
  // An entry left untimed still marks its directory: its hash then matches
  // no tree whose entries all have their content's time.
  for (const path of untimed) tree.add(path, "untimed", "-");
  for (const e of timed) {
    if (e.mode === MODE_GITLINK) {
      const sub = join(dir, e.path);
      report.submodules++;
      // A checked-out submodule is a repository of its own: its files get
      // their times there. Its directory's time and our hash use the commit.
      if (isWorkTreeRoot(sub)) processTree(sub, report);
      setTime(sub, e.path, e.oid, report, false);
      tree.add(e.path, e.mode, e.oid);
      continue;
    }
    if (setTime(join(dir, e.path), e.path, e.oid, report, e.mode === MODE_SYMLINK)) {
      if (e.mode === MODE_SYMLINK) report.symlinks++;
      else report.files++;
    }
    tree.add(e.path, e.mode, e.oid);
  }
  for (const [rel, hash] of tree.hashes(format)) {
    if (rel === "") continue;
    if (setTime(join(dir, rel), rel, hash, report, false)) report.dirs++;
  }
  return tree.rootHash(format);
}

function present(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function isWorkTreeRoot(dir: string): boolean {
  return present(join(dir, ".git"));
}

/** Sets one path's time from an ID; false if the path is absent or the change failed (recorded). */
function setTime(abs: string, rel: string, oid: string, report: MtimesReport, link: boolean): boolean {
  const when = new Date(contentTimeMs(oid));
  try {
    if (link) lutimesSync(abs, when, when);
    else utimesSync(abs, when, when);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") report.absent++;
    else report.failed.push({ path: rel, why: `${code ?? "error"}: ${(err as Error).message}` });
    return false;
  }
}

/**
 * The directories holding tracked entries, with a content hash for each:
 * SHA-256 over its direct children's "<mode> <id> <name>\n" lines in name
 * order, a subdirectory's id being its own hash (a Merkle tree, like git's
 * tree objects but computed from what is in the work tree now).
 */
class DirTree {
  /** Directory (relative, "" for the root) -> child name -> "<mode> <id>" ("" for a subdirectory). */
  private readonly children = new Map<string, Map<string, string>>([["", new Map()]]);
  /** Directory -> its hash, once hashes() ran. */
  private done = new Map<string, string>();

  add(path: string, mode: string, oid: string): void {
    const slash = path.lastIndexOf("/");
    const parent = slash < 0 ? "" : path.slice(0, slash);
    this.dir(parent).set(path.slice(slash + 1), `${mode} ${oid}`);
  }

  private dir(rel: string): Map<string, string> {
    let m = this.children.get(rel);
    if (m) return m;
    m = new Map();
    this.children.set(rel, m);
    if (rel !== "") {
      const slash = rel.lastIndexOf("/");
      // The entry's ID is filled in once the directory's own hash is known.
      this.dir(slash < 0 ? "" : rel.slice(0, slash)).set(rel.slice(slash + 1), "");
    }
    return m;
  }

  /** Every directory's hash, deepest first (a parent needs its children's). */
  hashes(format: string): [string, string][] {
    const order = [...this.children.keys()].sort((a, b) => depth(b) - depth(a));
    const out: [string, string][] = [];
    const done = new Map<string, string>();
    for (const rel of order) {
      const kids = this.children.get(rel)!;
      const h = new Bun.CryptoHasher("sha256");
      h.update(`gostash-dir ${format}\n`);
      for (const name of [...kids.keys()].sort()) {
        const v = kids.get(name) || `040000 ${done.get(rel ? `${rel}/${name}` : name)}`;
        h.update(`${v} ${name}\n`);
      }
      const hash = h.digest("hex");
      done.set(rel, hash);
      out.push([rel, hash]);
    }
    this.done = done;
    return out;
  }

  rootHash(format: string): string | null {
    if (this.children.get("")!.size === 0) return null;
    if (!this.done.has("")) this.hashes(format);
    return this.done.get("") ?? null;
  }
}

function depth(rel: string): number {
  if (rel === "") return 0;
  let n = 1;
  for (let i = 0; i < rel.length; i++) if (rel.charCodeAt(i) === 47) n++;
  return n;
}
