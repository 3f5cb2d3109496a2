// The git plumbing `ci mtimes` needs, run with the git command itself (it
// knows the index format, sparse checkouts, filters and both object
// formats). Every call is one process with -z output; nothing here needs
// history, so shallow clones work.
//
// Names are read as bytes: one that is not valid UTF-8 would decode to a
// string naming another file (U+FFFD in place of each bad byte), so such
// entries are counted and left out rather than guessed at.

import { statSync } from "node:fs";

export class CiError extends Error {
  override name = "CiError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message.startsWith("ci") ? message : `ci: ${message}`, options);
  }
}

/** One index entry: `git ls-files -s` mode, object ID and path (relative to the directory asked about). */
export interface IndexEntry {
  mode: string;
  oid: string;
  path: string;
  /**
   * Marked assume-unchanged or skip-worktree: git neither checks nor
   * reports such a file's work-tree copy, which may differ from oid.
   */
  flagged: boolean;
}

export const MODE_FILE = "100644";
export const MODE_EXEC = "100755";
export const MODE_SYMLINK = "120000";
export const MODE_GITLINK = "160000";

function git(cwd: string, args: string[], input?: string): { code: number; out: Buffer; err: string } {
  let p;
  try {
    p = Bun.spawnSync(["git", ...args], {
      cwd,
      stdin: input === undefined ? "ignore" : new TextEncoder().encode(input),
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, GIT_OPTIONAL_LOCKS: "0", LC_ALL: "C" },
    });
  } catch (err) {
    throw new CiError(`ci mtimes: cannot run git in ${cwd} (${(err as Error)?.message ?? err}); is git installed?`, { cause: err });
  }
  return { code: p.exitCode ?? 1, out: p.stdout, err: p.stderr.toString().trim() };
}

function must(cwd: string, args: string[], input?: string): Buffer {
  const r = git(cwd, args, input);
  if (r.code !== 0) throw new CiError(`ci mtimes: git ${args.join(" ")} failed in ${cwd} (exit ${r.code}): ${r.err}`);
  return r.out;
}

const strictUTF8 = new TextDecoder("utf-8", { fatal: true });

/** The NUL-terminated records of -z output, each decoded, or null where it is not valid UTF-8. */
function splitZ(out: Buffer): (string | null)[] {
  const recs: (string | null)[] = [];
  for (let start = 0; start < out.length; ) {
    let end = out.indexOf(0, start);
    if (end < 0) end = out.length;
    if (end > start) recs.push(decodeStrict(out.subarray(start, end)));
    start = end + 1;
  }
  return recs;
}

function decodeStrict(bytes: Uint8Array): string | null {
  try {
    return strictUTF8.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * Throws a CiError naming dir unless it is a directory inside a git work
 * tree. Checked before git runs: a missing cwd would fail the spawn itself,
 * which reads like git is not installed.
 */
export function requireWorkTree(dir: string): void {
  requireDirectory(dir);
  const r = git(dir, ["rev-parse", "--is-inside-work-tree"]);
  if (r.code !== 0 || r.out.toString().trim() !== "true") {
    const why = r.err.split("\n")[0] || "not a work tree";
    throw new CiError(`ci mtimes: ${dir} is not inside a git work tree (${why}); run it in a checkout, or name one: gostash ci mtimes DIR`);
  }
}

function requireDirectory(dir: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === "ENOENT" ? "no such directory" : `cannot read it (${code ?? (err as Error).message})`;
    throw new CiError(`ci mtimes: ${dir}: ${what}; name a directory in a git checkout: gostash ci mtimes DIR`, { cause: err });
  }
  if (!isDir) throw new CiError(`ci mtimes: ${dir} is not a directory; name a directory in a git checkout: gostash ci mtimes DIR`);
}

/** "sha1" or "sha256": how this repository names its objects. */
export function objectFormat(dir: string): "sha1" | "sha256" {
  const r = git(dir, ["rev-parse", "--show-object-format"]);
  return r.code === 0 && r.out.toString().trim() === "sha256" ? "sha256" : "sha1";
}

/**
 * Every index entry under dir (paths relative to dir), and how many entries
 * have a name that is not valid UTF-8 (left out). Conflicted paths appear
 * once, stage 0 ID unknown ("").
 */
export function indexEntries(dir: string): { entries: IndexEntry[]; undecodable: number } {
  const byPath = new Map<string, IndexEntry>();
  let undecodable = 0;
  // -v: "<tag> <mode> <oid> <stage>\t<path>"; the tag is "H" for a plain
  // cached entry, "S" for skip-worktree, lowercase for assume-unchanged.
  for (const rec of splitZ(must(dir, ["ls-files", "-s", "-v", "-z"]))) {
    if (rec === null) {
      undecodable++;
      continue;
    }
    const tab = rec.indexOf("\t");
    const [tag, mode, oid, stage] = rec.slice(0, tab).split(" ");
    const path = rec.slice(tab + 1);
    if (!mode || !oid || tab < 0) continue;
    // Any tag but "H" (unmerged "M", or one a later git adds) is re-checked: a re-hash costs little, a stale ID a wrong result.
    byPath.set(path, { mode, oid: stage === "0" ? oid : "", path, flagged: tag !== "H" });
  }
  return { entries: [...byPath.values()], undecodable };
}

/**
 * Paths whose work-tree content differs from the index (deleted ones
 * included). A file whose stat data differs from the index's but whose
 * content does not (touched, or a checkout git has not refreshed) is
 * compared by content and not listed: no `update-index --refresh` needed.
 */
export function modifiedPaths(dir: string): Set<string> {
  // A name that is not UTF-8 is left out: its entry is never timed anyway.
  return new Set(splitZ(must(dir, ["ls-files", "-m", "-z"])).filter((p) => p !== null));
}

/** A work-tree file's object ID, or why git could not hash it. */
export type Hashed = { oid: string } | { error: string };

/**
 * The object IDs git would give these work-tree files (clean filters
 * applied, as `git add` would), paths relative to dir. One file git cannot
 * hash (unreadable, vanished) fails the batch; then each is hashed alone, so
 * only that one goes without an ID.
 */
export function hashWorkTreeFiles(dir: string, paths: string[]): Hashed[] {
  if (paths.length === 0) return [];
  // git reads --stdin-paths relative to the top of the work tree (it moves
  // there before reading them; only command-line paths get the prefix).
  const prefix = workTreePrefix(dir);
  const top = paths.map((p) => prefix + p);
  const all = hashObjects(dir, top);
  if (!("error" in all)) return all.map((oid) => ({ oid }));
  return top.map((p) => {
    const one = hashObjects(dir, [p]);
    return "error" in one ? one : { oid: one[0]! };
  });
}

function hashObjects(dir: string, topPaths: string[]): string[] | { error: string } {
  const r = git(dir, ["hash-object", "--stdin-paths"], topPaths.map(cQuote).join("\n") + "\n");
  const ids = r.out.toString().split("\n").filter(Boolean);
  // git's last line says what failed ("fatal: <path>: clean filter 'x' failed"); earlier ones are the filter's own.
  if (r.code !== 0) return { error: `git hash-object failed (exit ${r.code}): ${r.err.split("\n").at(-1)}` };
  if (ids.length !== topPaths.length) return { error: `git hash-object returned ${ids.length} IDs for ${topPaths.length} files` };
  return ids;
}

/** dir relative to the top of its work tree, "" or ending in "/" (`git rev-parse --show-prefix`). */
function workTreePrefix(dir: string): string {
  // Only the newline git ends the line with is dropped: a name may end in spaces.
  return must(dir, ["rev-parse", "--show-prefix"]).toString().replace(/\n$/, "");
}

/**
 * A path C-quoted the way git un-quotes a --stdin-paths line, so every name
 * is read back as itself: git takes a line starting with `"` as quoted and
 * drops a line's trailing CR, and a newline would end the line.
 */
function cQuote(path: string): string {
  const body = path.replace(/["\\\x00-\x1f\x7f]/g, (c) =>
    c === '"' || c === "\\" ? `\\${c}` : `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`,
  );
  return `"${body}"`;
}

/** The blob ID of a symlink whose target is `target` (its bytes, as readlink gives them), as git computes it. */
export function symlinkBlobID(target: Uint8Array, format: "sha1" | "sha256"): string {
  const h = new Bun.CryptoHasher(format);
  h.update(`blob ${target.length}\0`);
  h.update(target);
  return h.digest("hex");
}
