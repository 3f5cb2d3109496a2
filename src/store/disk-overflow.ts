// The overflow directory: where an output goes when the cache directory
// cannot take it (full, read-only, foreign-owned; disk.ts). The go command
// still needs a file at the put's DiskPath while it runs, and nothing else
// ever reads it: no entry points to it, so a later get misses.
//
// Layout (default <tmp>/gostash-overflow-<uid>/, one per user):
//
//   <outputID>-d.<pid>.<thread>.<seq>    one file per write, named by the
//                                        process (and thread) that wrote it
//
// Files are never shared between writes. The go command reads them while
// it runs, and so may its caller after it: `go list -export` prints paths
// that go/packages (gopls, linters) open once go list has exited. So a file
// is removed only when it is surely done with:
//
//   - its writer is gone and it is over an hour old, or
//   - it is over a day old (a daemon's own files; names from before this
//     layout, <outputID>-d).
//
// sweepOverflow() does that: on the first overflow write of a process, and with the
// cache's daily trim (disk.ts). Before this, every output of every build on
// a machine with a full or read-only cache directory stayed in /tmp for good.

import { mkdirSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { threadId } from "node:worker_threads";
import { namesIn } from "../util/names-in.ts";

const GONE_WRITER_AGE_MS = 3600_000;
const MAX_AGE_MS = 24 * 3600_000;
const NAME = /^[0-9a-f]{64}-d\.(\d+)\.\d+\.\d+$/;

let seq = 0;

export class OverflowDir {
  private ready = false;

  constructor(readonly dir: string) {}

  /** A fresh path for one output; the first one makes the directory and sweeps it. */
  pathFor(outputID: string): string {
    if (!this.ready) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.ready = true;
      sweepOverflow(this.dir);
    }
    return join(this.dir, `${outputID}-d.${process.pid}.${threadId}.${++seq}`);
  }
}

/** Removes the files that are done with (above); how many went. A missing directory is nothing to do. */
export function sweepOverflow(dir: string, now = Date.now()): number {
  let removed = 0;
  const alive = new Map<number, boolean>();
  for (const name of namesIn(dir)) {
    const path = join(dir, name);
    const age = now - mtimeOf(path);
    if (age <= GONE_WRITER_AGE_MS) continue;
    const pid = Number(NAME.exec(name)?.[1] ?? 0);
    if (age <= MAX_AGE_MS && (pid === 0 || pid === process.pid || isAlive(pid, alive))) continue;
    try {
      unlinkSync(path);
      removed++;
    } catch {}
  }
  return removed;
}

/** Whether a process with this pid exists (one of another user counts: EPERM). */
function isAlive(pid: number, seen: Map<number, boolean>): boolean {
  let a = seen.get(pid);
  if (a === undefined) {
    try {
      process.kill(pid, 0);
      a = true;
    } catch (err) {
      a = (err as NodeJS.ErrnoException).code !== "ESRCH";
    }
    seen.set(pid, a);
  }
  return a;
}

function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return Date.now();
  }
}
