// The run log: one small JSON record per go command that used gostash,
// for `gostash ci summary`.
//
// Layout: <cache dir>/gostash-runs.jsonl, next to Go's <xx> directories
// (Go's trim and `go clean -cache` never touch it). One JSON object per
// line (RunRecord below), appended with a single write() on a file opened
// for appending, so concurrent go commands never interleave inside a line.
// A line cut short by a crash is not valid JSON and is skipped on reading.
// When the file grows over MAX_BYTES it is rewritten (temp file + rename)
// with the newest lines that fit in half of it; a line another process
// appends in that instant may be lost (it is a report, not a cache).
//
// Who writes: plugin mode once the go command has its last answer
// (counters of the whole run); `connect` at its end (its window in time and
// the go command line, plus counters for whatever it served itself when
// the daemon was away; the daemon keeps the rest, see journal.ts).

import { closeSync, fstatSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { CommandCounts } from "../buildcache/command-counts.ts";

export const RUNLOG_FILE = "gostash-runs.jsonl";
const MAX_BYTES = 1 << 20;

export interface RunRecord {
  v: 1;
  /** ci/job.ts jobID(): null outside CI. */
  job: string | null;
  /** plugin: gostash served the go command itself; connect: through a daemon (counters: what it served itself, if the daemon was away). */
  mode: "plugin" | "connect";
  pid: number;
  /** The go command line, where the OS shows it (ci/job.ts). */
  argv: string[] | null;
  /** Date.now() when the run started and ended. */
  start: number;
  end: number;
  counters: CommandCounts | null;
  /** Bucket uploads of this run (plugin mode: its own queue). */
  uploads: { count: number; bytes: number; failed: number; left: number } | null;
  slowest: { what: string; costMs: number }[];
  /** connect: the daemon it talked to. */
  daemon?: string;
}

export function runLogPath(cacheDir: string): string {
  return join(cacheDir, RUNLOG_FILE);
}

/** Appends one record; never throws (returns the error instead). */
export function appendRun(cacheDir: string, rec: RunRecord): Error | null {
  const path = runLogPath(cacheDir);
  try {
    const fd = openSync(path, "a");
    let size: number;
    try {
      writeSync(fd, `${JSON.stringify(rec)}\n`);
      size = fstatSync(fd).size;
    } finally {
      closeSync(fd);
    }
    if (size > MAX_BYTES) shrink(path);
    return null;
  } catch (err) {
    return err as Error;
  }
}

function shrink(path: string): void {
  const lines = readFileSync(path, "utf8").split("\n").filter(Boolean);
  const kept: string[] = [];
  let bytes = 0;
  for (let i = lines.length - 1; i >= 0 && bytes + lines[i]!.length + 1 <= MAX_BYTES / 2; i--) {
    kept.push(lines[i]!);
    bytes += lines[i]!.length + 1;
  }
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, kept.reverse().map((l) => `${l}\n`).join(""));
  renameSync(tmp, path);
}

/** Every readable record, oldest first; a missing log is empty. */
export function readRuns(cacheDir: string): RunRecord[] {
  let text: string;
  try {
    text = readFileSync(runLogPath(cacheDir), "utf8");
  } catch {
    return [];
  }
  const out: RunRecord[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    try {
      const r = JSON.parse(line) as RunRecord;
      if (r && r.v === 1 && typeof r.start === "number") out.push(r);
    } catch {
      // a line cut short by a crash
    }
  }
  return out;
}
