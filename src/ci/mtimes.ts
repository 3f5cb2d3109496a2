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
//   regular files   from their blob ID: the index's when the work tree
//                   matches it, else `git hash-object` of the work-tree file
//   symlinks        the link itself (lutimes, never its target), from its blob ID
//   directories     that hold tracked entries, from a hash of their tracked
//                   children (name, mode, ID), computed bottom-up: a test
//                   that lists testdata/ hashes the directory's mtime too
//   submodules      checked-out ones are processed as repositories of their
//                   own; an empty (not initialised) one gets its commit's time
// Untracked and ignored files are left alone (though their presence in a
// directory a test lists still changes that test's key).
//
// The time: 2000-01-01 UTC + the first 28 bits of the ID as seconds (up to
// ~8.5 years) + the next bits modulo 1000 as milliseconds. Always years in
// the past, so never "too new" for the go command; after 1980, so zip and
// similar formats can store it; whole milliseconds, so every runtime and
// file system with ms (or finer) resolution stores it exactly. Two different
// contents of the same size collide with probability 1 in 2^28*1000 (about
// 4e-12; 1 in 2^28 on a file system with whole-second times), and then a
// test that read that file would be served a stale cached result.

import { lstatSync, lutimesSync, readFileSync, readlinkSync, utimesSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  CiError,
  hashWorkTreeFiles,
  indexEntries,
  MODE_GITLINK,
  MODE_SYMLINK,
  modifiedPaths,
  objectFormat,
  requireWorkTree,
  symlinkBlobID,
  type IndexEntry,
} from "./git.ts";

/** 2000-01-01T00:00:00Z in milliseconds. */
const BASE_MS = 946_684_800_000;

/** The modification time for content with this object ID (hex), in ms since the epoch. */
export function contentTimeMs(oid: string): number {
  if (!/^[0-9a-f]{16,}$/.test(oid)) throw new CiError(`ci mtimes: not an object ID: ${JSON.stringify(oid)}`);
  const seconds = parseInt(oid.slice(0, 7), 16); // 28 bits
  const millis = parseInt(oid.slice(7, 15), 16) % 1000;
  return BASE_MS + seconds * 1000 + millis;
}

export interface MtimesReport {
  dir: string;
  files: number;
  symlinks: number;
  dirs: number;
  submodules: number;
  /** Files whose work-tree content differs from the index: timed from their own content. */
  modified: number;
  /** Tracked but not in the work tree (deleted, sparse checkout). */
  absent: number;
  /** Could not be set (permissions, ...), with the reason. */
  failed: { path: string; why: string }[];
  seconds: number;
}

/** A tracked entry with the object ID its current content has. */
interface Timed {
  path: string;
  mode: string;
  oid: string;
}

export function setContentMtimes(dirArg: string): MtimesReport {
  const t0 = performance.now();
  const dir = resolve(dirArg);
  requireWorkTree(dir);
  const report: MtimesReport = { dir, files: 0, symlinks: 0, dirs: 0, submodules: 0, modified: 0, absent: 0, failed: [], seconds: 0 };
  const rootHash = processTree(dir, report);
  if (rootHash) setTime(dir, ".", rootHash, report, false);
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}

/** Sets the times under dir (one repository); returns the hash of its tracked tree, or null if it tracks nothing. */
function processTree(dir: string, report: MtimesReport): string | null {
  const format = objectFormat(dir);
  const entries = currentIDs(dir, indexEntries(dir), format, report);
  const tree = new DirTree();
  for (const e of entries) {
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

/** The index entries with IDs for what is in the work tree now (modified files hashed afresh). */
function currentIDs(dir: string, entries: IndexEntry[], format: "sha1" | "sha256", report: MtimesReport): Timed[] {
  const modified = modifiedPaths(dir);
  const out: Timed[] = [];
  const toHash: Timed[] = [];
  for (const e of entries) {
    const t: Timed = { path: e.path, mode: e.mode, oid: e.oid };
    if (e.mode === MODE_GITLINK) out.push(t);
    else if (modified.has(e.path) || e.oid === "") {
      if (!present(join(dir, e.path))) {
        report.absent++;
        continue;
      }
      report.modified++;
      if (e.mode === MODE_SYMLINK) t.oid = symlinkBlobID(readlinkSync(join(dir, e.path)), format);
      else toHash.push(t);
      out.push(t);
    } else out.push(t);
  }
  // git reads paths one per line: a name with a newline in it is hashed here, without filters.
  const viaGit = toHash.filter((t) => !t.path.includes("\n"));
  hashWorkTreeFiles(dir, viaGit.map((t) => t.path)).forEach((oid, i) => (viaGit[i]!.oid = oid));
  for (const t of toHash) if (t.path.includes("\n")) t.oid = blobOfFile(join(dir, t.path), format);
  return out;
}

function blobOfFile(path: string, format: "sha1" | "sha256"): string {
  const body = readFileSync(path);
  const h = new Bun.CryptoHasher(format);
  h.update(`blob ${body.length}\0`);
  h.update(body);
  return h.digest("hex");
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
