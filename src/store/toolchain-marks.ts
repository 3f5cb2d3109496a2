// Toolchain marks: which go toolchains the bucket holds outputs of.
//
// Layout (in the bucket, under the optional --prefix):
//
//   key   toolchains/<GOOS>-<GOARCH>/<GOVERSION>
//   body  "gostash-toolchain 1\n<time written, Unix ms>\n"
//
// Every hash the go command makes starts with its version, experiments
// left out (Go's cmd/go/internal/cache.hashSalt; so are they here), and
// every compile and link action hashes GOOS and GOARCH too, so a go command
// of a version and platform the bucket has never seen cannot hit any
// per-action object in it. A writer queues the mark with its first upload
// of such a run; a reader that finds no mark answers its local misses as
// misses without asking the bucket for each one
// (buildcache/toolchain-mark.ts): on a fresh toolchain (every Go upgrade, a
// new platform in a CI matrix) that is hundreds of round trips a cold build
// no longer waits for.
//
// A missing mark where outputs exist costs hits, never correctness:
// buckets written before marks existed, or a mark a lifecycle rule removed.
// Writers put the mark again once it is a day old, so an age-based
// lifecycle rule removes it only after everything written before its last
// refresh. The body is for people; a mark that does not parse counts as
// old.

/** Keys of toolchain marks, under the prefix. */
export const MARKS_DIR = "toolchains/";
/** A writer refreshes a mark older than this. */
export const MARK_REFRESH_MS = 24 * 3600_000;
const MAGIC = "gostash-toolchain 1\n";
const MAX_PART = 100;

/** What the go command that started us says about its toolchain (its environment), or null if it does not say. */
export function toolchainOf(env: Record<string, string | undefined>): string | null {
  const version = withoutExperiments(env.GOVERSION?.trim() ?? "");
  const goos = env.GOOS?.trim();
  const goarch = env.GOARCH?.trim();
  if (!version || !goos || !goarch) return null;
  return `${safePart(goos)}-${safePart(goarch)}/${safePart(version)}`;
}

/** The version as Go salts its hashes with: experiments (" X:...", "-X:...") do not change it (cmd/go/internal/cache stripExperiment). */
function withoutExperiments(v: string): string {
  const i = v.search(/[ -]X:/);
  return i >= 0 ? v.slice(0, i) : v;
}

/**
 * A key segment made of letters, digits and ._- only (devel versions hold
 * spaces and colons), never "." or "..": a daemon's clients say what their
 * version is (daemon/hello.ts), and a file-backed S3 server may take a key
 * for a path.
 */
function safePart(s: string): string {
  const part = s.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, MAX_PART);
  return /^\.+$/.test(part) ? part.replace(/\./g, "_") : part;
}

/** The mark's object name for a toolchain (toolchainOf). */
export function markObject(toolchain: string): string {
  return `${MARKS_DIR}${toolchain}`;
}

export function encodeMark(nowMs: number): Uint8Array {
  return new TextEncoder().encode(`${MAGIC}${Math.floor(nowMs)}\n`);
}

/** When the mark was written (Unix ms), or null if its body is not a mark's. */
export function markTime(body: Uint8Array): number | null {
  const text = new TextDecoder().decode(body);
  if (!text.startsWith(MAGIC)) return null;
  const ms = Number(text.slice(MAGIC.length).trim());
  return Number.isSafeInteger(ms) && ms > 0 ? ms : null;
}
