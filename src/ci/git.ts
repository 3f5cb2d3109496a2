// The git plumbing `ci mtimes` needs, run with the git command itself (it
// knows the index format, sparse checkouts, filters and both object
// formats). Every call is one process with -z output; nothing here needs
// history, so shallow clones work.

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
}

export const MODE_FILE = "100644";
export const MODE_EXEC = "100755";
export const MODE_SYMLINK = "120000";
export const MODE_GITLINK = "160000";

function git(cwd: string, args: string[], input?: string): { code: number; out: string; err: string } {
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
  return { code: p.exitCode ?? 1, out: p.stdout.toString(), err: p.stderr.toString().trim() };
}

function must(cwd: string, args: string[], input?: string): string {
  const r = git(cwd, args, input);
  if (r.code !== 0) throw new CiError(`ci mtimes: git ${args.join(" ")} failed in ${cwd} (exit ${r.code}): ${r.err}`);
  return r.out;
}

function splitZ(out: string): string[] {
  return out.split("\0").filter((s) => s.length > 0);
}

/** Throws a CiError naming dir unless it is inside a git work tree. */
export function requireWorkTree(dir: string): void {
  const r = git(dir, ["rev-parse", "--is-inside-work-tree"]);
  if (r.code !== 0 || r.out.trim() !== "true") {
    const why = r.err.split("\n")[0] || "not a work tree";
    throw new CiError(`ci mtimes: ${dir} is not inside a git work tree (${why}); run it in a checkout, or name one: gostash ci mtimes DIR`);
  }
}

/** "sha1" or "sha256": how this repository names its objects. */
export function objectFormat(dir: string): "sha1" | "sha256" {
  const r = git(dir, ["rev-parse", "--show-object-format"]);
  return r.code === 0 && r.out.trim() === "sha256" ? "sha256" : "sha1";
}

/** Every index entry under dir (paths relative to dir). Conflicted paths appear once, stage 0 ID unknown (""). */
export function indexEntries(dir: string): IndexEntry[] {
  const byPath = new Map<string, IndexEntry>();
  for (const rec of splitZ(must(dir, ["ls-files", "-s", "-z"]))) {
    // "<mode> <oid> <stage>\t<path>"
    const tab = rec.indexOf("\t");
    const [mode, oid, stage] = rec.slice(0, tab).split(" ");
    const path = rec.slice(tab + 1);
    if (!mode || !oid || tab < 0) continue;
    byPath.set(path, { mode, oid: stage === "0" ? oid : "", path });
  }
  return [...byPath.values()];
}

/**
 * Paths whose work-tree content differs from the index (deleted ones
 * included). A file whose stat data differs from the index's but whose
 * content does not (touched, or a checkout git has not refreshed) is
 * compared by content and not listed: no `update-index --refresh` needed.
 */
export function modifiedPaths(dir: string): Set<string> {
  return new Set(splitZ(must(dir, ["ls-files", "-m", "-z"])));
}

/** The object IDs git would give these work-tree files (clean filters applied, as `git add` would). */
export function hashWorkTreeFiles(dir: string, paths: string[]): string[] {
  if (paths.length === 0) return [];
  const ids = must(dir, ["hash-object", "--stdin-paths"], paths.join("\n") + "\n").split("\n").filter(Boolean);
  if (ids.length !== paths.length) throw new CiError(`ci mtimes: git hash-object returned ${ids.length} IDs for ${paths.length} files`);
  return ids;
}

/** The blob ID of a symlink whose target is `target`, as git computes it. */
export function symlinkBlobID(target: string, format: "sha1" | "sha256"): string {
  const body = Buffer.from(target);
  const h = new Bun.CryptoHasher(format);
  h.update(`blob ${body.length}\0`);
  h.update(body);
  return h.digest("hex");
}
