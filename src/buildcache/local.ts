// The adapter between the protocol and the local disk store: the go
// command's get and put callbacks (cacheprog/session.ts) answered from Go's
// own cache layout (store/disk.ts), counted in the metrics. This is the
// whole build cache when no bucket is set, the first tier when one is, and
// what connect falls back to when the daemon cannot be reached.

import type { CacheHandler, PutWriter } from "../cacheprog/session.ts";
import type { DiskStore, StoredOutput } from "../store/disk.ts";
import type { Metrics } from "../util/metrics.ts";

/** Counts one answered get: hits by tier (local disk, a pack, a per-action object), bytes served, latency. */
export function countGet(metrics: Metrics, t0: number, hit: StoredOutput | null, tier: "local" | "pack" | "remote"): void {
  if (hit) {
    metrics.inc(`hits_${tier}`);
    metrics.inc("bytes_hit", hit.size);
  } else metrics.inc("misses");
  metrics.observe("get_seconds", (performance.now() - t0) / 1000);
}

/**
 * A put into the disk store, counted; answers the output's DiskPath and
 * tells `stored` what was stored. With `keep`, the body is also kept in
 * memory and handed to `stored`, so that its upload and its pack need not
 * read back the file just written (null when it was not kept).
 */
export function localPut(
  disk: DiskStore,
  metrics: Metrics,
  actionID: string,
  outputID: string,
  size: number,
  stored?: (out: StoredOutput, body: Uint8Array | null) => void,
  keep = false,
): PutWriter {
  const t0 = performance.now();
  metrics.inc("puts");
  const w = disk.put(actionID, outputID, size);
  const chunks: Uint8Array[] | null = keep ? [] : null;
  return {
    write(bytes) {
      w.write(bytes);
      chunks?.push(bytes);
    },
    commit() {
      const out = w.commit();
      metrics.inc("bytes_put", size);
      metrics.observe("put_seconds", (performance.now() - t0) / 1000);
      stored?.(out, chunks && (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
      return out.diskPath;
    },
    abort() {
      metrics.inc("put_errors");
      w.abort();
    },
  };
}

export function createLocalCache(disk: DiskStore, metrics: Metrics): CacheHandler {
  return {
    readMayBlock: () => true,
    get(actionID: string): StoredOutput | null {
      const t0 = performance.now();
      metrics.inc("gets");
      const hit = disk.get(actionID);
      countGet(metrics, t0, hit, "local");
      return hit;
    },
    put: (actionID, outputID, size) => localPut(disk, metrics, actionID, outputID, size),
    close() {
      // Trimming is the owner's job, once `go` has its answer: plugin mode
      // and connect's fallback trim after the session, the daemon on a timer.
    },
  };
}
