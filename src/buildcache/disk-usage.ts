// How much the local build cache holds, against --max-size, and what trims
// removed: for the status page and /metrics.
//
//   disk_bytes          estimate of the bytes in Go's layout (entries and
//                       outputs, store/disk-layout.ts): measured once by a
//                       walk, then kept current from the bytes this process
//                       writes and from each trim's report. Shown only once
//                       measured (the daemon measures at start).
//   disk_max_bytes      --max-size (only when set)
//   trims               trims that ran (not the ones skipped as not due)
//   trim_removed_files, trim_removed_bytes
//
// The walk reads one <xx> directory at a time with asynchronous stats, so a
// large cache never holds up the go commands being served meanwhile.
// node:fs/promises is loaded by the walk, not with this module: every
// plugin run loads this file and few walk (with node:zlib loaded late too,
// store/pack-file.ts, the plugin of a warm `go build std` took 64 ms of CPU
// instead of 68).

import { join } from "node:path";
import type { DiskStore, TrimReport } from "../store/disk.ts";
import type { Metrics } from "../util/metrics.ts";

export class DiskUsage {
  /** Bytes at the last measure or trim; null until measured. */
  private base: number | null = null;
  /** disk.bytesWritten when base was taken. */
  private writtenAtBase = 0;
  private measuring: Promise<void> | null = null;

  constructor(
    private readonly disk: DiskStore,
    private readonly maxSize: number,
    private readonly metrics: Metrics,
  ) {
    if (maxSize > 0) metrics.gauge("disk_max_bytes", () => maxSize);
  }

  /** Bytes stored now (estimate), or null before the first measure. */
  get bytes(): number | null {
    if (this.base === null) return null;
    const since = this.disk.bytesWritten - this.writtenAtBase;
    return this.base + Math.max(0, since);
  }

  /** Walks the store once and publishes disk_bytes; later calls share the first walk. */
  measure(): Promise<void> {
    this.measuring ??= (async () => {
      const written = this.disk.bytesWritten;
      const total = await storedBytes(this.disk.dir);
      this.base = total;
      this.writtenAtBase = written;
      this.metrics.gauge("disk_bytes", () => this.bytes ?? 0);
    })();
    return this.measuring;
  }

  /** Counts a trim and takes its kept bytes as the new base (the store reset its written count). */
  trimmed(r: TrimReport): void {
    if (r.skipped) return;
    this.metrics.inc("trims");
    this.metrics.inc("trim_removed_files", r.removedFiles);
    this.metrics.inc("trim_removed_bytes", r.removedBytes);
    if (this.base !== null) {
      this.base = r.keptBytes;
      this.writtenAtBase = this.disk.bytesWritten;
    }
  }
}

/** Bytes of entries (-a) and outputs (-d, a file or a directory of one file) under dir/<xx>/. */
export async function storedBytes(dir: string): Promise<number> {
  const fs = await import("node:fs/promises");
  let total = 0;
  for (let i = 0; i < 256; i++) {
    const sub = join(dir, i.toString(16).padStart(2, "0"));
    let names: string[];
    try {
      names = await fs.readdir(sub);
    } catch {
      continue;
    }
    for (const name of names) {
      if (name.endsWith("-a") || name.endsWith("-d")) total += await pathBytes(fs, join(sub, name));
    }
  }
  return total;
}

async function pathBytes(fs: typeof import("node:fs/promises"), path: string): Promise<number> {
  try {
    const st = await fs.stat(path);
    if (!st.isDirectory()) return st.size;
    let n = 0;
    for (const name of await fs.readdir(path)) n += (await fs.stat(join(path, name))).size;
    return n;
  } catch {
    return 0; // trimmed while we looked
  }
}
