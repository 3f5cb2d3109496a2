// Trimming the local store the way the go command trims its own cache
// (layout and intervals: disk-layout.ts), plus gostash's optional size cap:
//
// - at most once a day (trim.txt, shared with Go): entries and outputs not
//   used for the expiry (Go's 5 days by default) are removed;
// - stale temp files (a writer that died) are removed on every pass;
// - with --max-size, when the running usage estimate says the cap is
//   passed, the least recently used files go until 90% of the cap is left,
//   so a cache near its cap is not trimmed on every run. Files used within
//   the last RECENT (an mtime is refreshed at most hourly, so a file handed
//   out a minute ago may carry an mtime 59 minutes old) are never evicted:
//   a running go command may still read them. The cap can be passed by
//   what was used in that time.
// - the estimate (gostash-usage.json) is the last trim's measure plus what
//   every process wrote since: a process whose trim is not due adds its
//   bytes to it, so many short-lived plugin runs add up to a trim. Two
//   processes adding at once may lose one's bytes: an estimate, corrected
//   by the next measure.

import { readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync, type Stats } from "node:fs";
import { join } from "node:path";
import { MTIME_INTERVAL, STALE_TEMP, TRIM_INTERVAL, TRIM_LIMIT } from "./disk-layout.ts";

export interface TrimReport {
  skipped: boolean;
  /** Skipped, but bytesWritten was added to the usage estimate: the caller starts counting again. */
  counted?: boolean;
  removedFiles: number;
  removedBytes: number;
  keptBytes: number;
}

export interface TrimOptions {
  dir: string;
  /** Bytes; 0 or undefined: no cap. */
  maxSize?: number;
  /** Remove entries unused this long (ms); undefined: Go's 5 days. */
  expiryMs?: number;
  /** Bytes written since the last trim (added to the usage estimate). */
  bytesWritten: number;
  now: number;
  force?: boolean;
}

interface LiveFile {
  path: string;
  size: number;
  mtime: number;
}

export function trimDir(o: TrimOptions): TrimReport {
  const report: TrimReport = { skipped: true, removedFiles: 0, removedBytes: 0, keptBytes: 0 };
  const trimFile = join(o.dir, "trim.txt");
  const usageFile = join(o.dir, "gostash-usage.json");
  const lastTrim = Number(readText(trimFile)?.trim() ?? 0) * 1000;
  const dueByAge = o.force === true || !(o.now - lastTrim < TRIM_INTERVAL && o.now - lastTrim > -MTIME_INTERVAL);
  const usage = o.maxSize ? usageOf(usageFile) : 0;
  const overCap = o.maxSize ? usage < 0 || usage + o.bytesWritten > o.maxSize : false;
  if (!dueByAge && !overCap) {
    if (o.maxSize && o.bytesWritten > 0) report.counted = writeQuietly(usageFile, JSON.stringify({ bytes: usage + o.bytesWritten, at: o.now }));
    return report;
  }
  report.skipped = false;
  if (dueByAge) writeQuietly(trimFile, String(Math.floor(o.now / 1000)));
  const cutoff = o.now - (o.expiryMs ? o.expiryMs + MTIME_INTERVAL : TRIM_LIMIT);
  const live = sweep(o.dir, (st, isTemp) => (isTemp ? st.mtimeMs < o.now - STALE_TEMP : dueByAge && st.mtimeMs < cutoff), report);
  let total = live.reduce((a, f) => a + f.size, 0);
  if (o.maxSize && total > o.maxSize) total = evictLRU(live, total, o.maxSize * 0.9, o.now - RECENT, report);
  report.keptBytes = total;
  writeQuietly(usageFile, JSON.stringify({ bytes: total, at: o.now }));
  return report;
}

/** Removes what `old` says is old from every <xx> directory; returns the files kept. */
function sweep(dir: string, old: (st: Stats, isTemp: boolean) => boolean, report: TrimReport): LiveFile[] {
  const live: LiveFile[] = [];
  for (let i = 0; i < 256; i++) {
    const sub = join(dir, i.toString(16).padStart(2, "0"));
    let names: string[];
    try {
      names = readdirSync(sub);
    } catch {
      continue;
    }
    for (const name of names) {
      const isTemp = name.endsWith(".tmp");
      if (!isTemp && !name.endsWith("-a") && !name.endsWith("-d")) continue;
      const path = join(sub, name);
      let st: Stats;
      try {
        st = statSync(path);
      } catch {
        continue;
      }
      if (old(st, isTemp)) {
        if (removePath(path, st)) {
          report.removedFiles++;
          report.removedBytes += st.size;
        }
      } else if (!isTemp) live.push({ path, size: st.isDirectory() ? dirSize(path) : st.size, mtime: st.mtimeMs });
    }
  }
  return live;
}

/** Files used after this long ago are never evicted (see the top): the mtime interval and a margin. */
const RECENT = MTIME_INTERVAL + 10 * 60_000;

/** Least recently used first, down to target bytes, none used since `usedAfter`; returns the bytes left. */
function evictLRU(live: LiveFile[], total: number, target: number, usedAfter: number, report: TrimReport): number {
  live.sort((a, b) => a.mtime - b.mtime);
  for (const f of live) {
    if (total <= target || f.mtime >= usedAfter) break;
    if (removePath(f.path)) {
      total -= f.size;
      report.removedFiles++;
      report.removedBytes += f.size;
    }
  }
  return total;
}

function usageOf(file: string): number {
  try {
    return JSON.parse(readFileSync(file, "utf8")).bytes;
  } catch {
    return -1;
  }
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, "latin1");
  } catch {
    return null;
  }
}

/** Best effort: true if written. */
function writeQuietly(file: string, text: string): boolean {
  try {
    writeFileSync(file, text);
    return true;
  } catch {
    return false;
  }
}

function removePath(path: string, st?: Stats): boolean {
  try {
    if ((st ?? statSync(path)).isDirectory()) rmSync(path, { recursive: true, force: true });
    else unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

function dirSize(path: string): number {
  let n = 0;
  try {
    for (const name of readdirSync(path)) n += statSync(join(path, name)).size;
  } catch {}
  return n;
}
