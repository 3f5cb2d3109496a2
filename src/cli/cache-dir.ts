// The start-up check of a cache directory, in every mode that owns one:
// created if missing; if it cannot be used at all (a file is in the way,
// a read-only file system, no permission) the command stops with one line
// naming the directory, what set it and the cause, as plain go does
// ("failed to initialize build cache at X: mkdir X: not a directory").
//
// Trouble that starts later (the disk fills up, the file system turns
// read-only mid-build) is not this check's business: the disk store passes
// outputs through with one warning then (src/store/disk.ts).
//
// Writability is checked with access(2), which answers EROFS on a
// read-only file system and honours permissions: where plain go accepts a
// read-only cache whose 00..ff directories already exist and then fails
// the build with a misleading "package fmt is not in std", we say why at
// once. Three system calls: cheap enough to run before the capability line.

import { accessSync, constants, mkdirSync, statSync } from "node:fs";
import { StartupError } from "./errors.ts";

const REASONS: Record<string, string> = {
  EEXIST: "not a directory",
  ENOTDIR: "not a directory",
  EROFS: "read-only file system",
  EACCES: "permission denied",
  EPERM: "permission denied",
  ENOSPC: "no space left on device",
  ELOOP: "too many symbolic links",
};

/** "--cache-dir", "GOCACHE_DIR", or where the default came from. */
function describeSource(source: string, env: Record<string, string | undefined>): string {
  if (source !== "default") return source;
  return env.GOCACHE ? "GOCACHE" : "Go's default location";
}

function unusable(what: string, dir: string, source: string, err: unknown, env: Record<string, string | undefined>): StartupError {
  const e = err as NodeJS.ErrnoException;
  let reason = (e.code && REASONS[e.code]) ?? e.message ?? String(err);
  // mkdir -p names the path that failed: say which one when it is a parent.
  if (e.path && e.path !== dir && e.code !== "EEXIST") reason += ` (${e.path})`;
  return new StartupError(`cannot use ${what} ${dir} (${describeSource(source, env)}): ${reason}`, { cause: err });
}

/**
 * Makes sure dir is a writable directory, creating it if missing; throws a
 * StartupError otherwise. `what` names the directory's job ("the local
 * cache"), `source` what set it (Flags.source).
 */
export function checkCacheDir(
  dir: string,
  source: string,
  what = "the local cache",
  env: Record<string, string | undefined> = process.env,
): void {
  try {
    mkdirSync(dir, { recursive: true });
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw unusable(what, dir, source, err, env);
  }
}
