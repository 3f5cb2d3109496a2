// The go command's own build-cache layout (cmd/go/internal/cache/cache.go),
// which the local tier uses as it is, in the same directory by default:
//
//   <dir>/<xx>/<actionhex>-a   one line, exactly 175 bytes:
//       "v1 <actionhex> <outputhex> <size %20d> <unix nanos %20d>\n"
//   <dir>/<xx>/<outputhex>-d   the output bytes; this is the DiskPath.
//                              (Go 1.26 may store an executable as a
//                              directory holding one named file.)
//   <dir>/trim.txt             Unix seconds of the last trim, shared with Go
//   <dir>/gostash-usage.json   our running estimate of the bytes stored,
//                              so the --max-size cap needs no walk per run
//   <dir>/gostash-daemon.mark  a daemon's random mark: connect reads its
//                              hits here when it sees it (daemon/disk-mark.ts)
// <xx> is the first byte of the ID in hex.
//
// Temp files end in ".tmp" so Go's trim ignores them and ours removes
// stale ones. Entries are trimmed the way Go trims them: unused for 5 days,
// with the mtime refreshed at most hourly on use.

import { utimesSync } from "node:fs";

export const ENTRY_SIZE = 2 + 1 + 64 + 1 + 64 + 1 + 20 + 1 + 20 + 1;

const HOUR = 3600_000;
const DAY = 24 * HOUR;
/** Go refreshes an mtime on use at most once per hour (mtimeInterval). */
export const MTIME_INTERVAL = HOUR;

/** Refreshes an mtime at most hourly on use, as Go does (best effort). */
export function markUsed(path: string, mtimeMs: number, t: number): void {
  if (t - mtimeMs >= MTIME_INTERVAL) {
    try {
      const d = new Date(t);
      utimesSync(path, d, d);
    } catch {}
  }
}
/** Go trims at most once a day (trimInterval)... */
export const TRIM_INTERVAL = DAY;
/** ...entries unused for 5 days (trimLimit), plus one mtimeInterval of slack. */
export const TRIM_LIMIT = 5 * DAY + MTIME_INTERVAL;
/** A temp file this old belongs to a writer that died. */
export const STALE_TEMP = HOUR;

/** An output in the store: what a hit tells the go command. */
export interface StoredOutput {
  outputID: string; // hex
  size: number;
  /** When the entry was put, in Unix nanoseconds. */
  timeNanos: bigint;
  /** The output file; it outlives this process (go list -export reads it later). */
  diskPath: string;
}

export function formatEntry(actionID: string, outputID: string, size: number, timeNanos: bigint): string {
  return `v1 ${actionID} ${outputID} ${String(size).padStart(20)} ${String(timeNanos).padStart(20)}\n`;
}

/** Parses an entry file; null if it is not a valid entry for actionID. */
export function parseEntry(
  buf: Buffer,
  n: number,
  actionID: string,
): { outputID: string; size: number; timeNanos: bigint } | null {
  if (n !== ENTRY_SIZE) return null;
  const s = buf.toString("latin1", 0, n);
  if (!s.startsWith("v1 ") || s[67] !== " " || s[132] !== " " || s[153] !== " " || s[174] !== "\n") return null;
  if (s.slice(3, 67) !== actionID) return null;
  const outputID = s.slice(68, 132);
  if (!/^[0-9a-f]{64}$/.test(outputID)) return null;
  const size = Number(s.slice(133, 153).trim());
  const t = s.slice(154, 174).trim();
  if (!Number.isSafeInteger(size) || size < 0 || !/^\d+$/.test(t)) return null;
  return { outputID, size, timeNanos: BigInt(t) };
}

export function nowNanos(ms = Date.now()): bigint {
  return BigInt(ms) * 1_000_000n;
}

// ENOENT: the cache directory, or a subdirectory, went away under a writer
// (`go clean -cache` while a daemon writes; a symlinked cache whose target
// was removed): like a full disk, a reason to pass an output through.
const DISK_TROUBLE = new Set(["ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EIO", "EFBIG", "ENOENT"]);

/** Errors that mean "this directory cannot take more data", not a bug. */
export function isDiskTrouble(err: unknown): boolean {
  return DISK_TROUBLE.has((err as NodeJS.ErrnoException)?.code ?? "");
}
