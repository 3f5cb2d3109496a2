// The build cache served from the local disk alone: the default, and the
// fallback when a daemon cannot be reached.

import type { Hit } from "../cacheprog/protocol.ts";
import type { CacheHandler, PutWriter } from "../cacheprog/session.ts";
import type { Metrics } from "../util/metrics.ts";
import type { DiskStore } from "./disk.ts";

/** Counts one answered get: hits by tier, bytes served, latency. */
export function countGet(metrics: Metrics, t0: number, hit: Hit | null, tier: "local" | "remote"): void {
  if (hit) {
    metrics.inc(`hits_${tier}`);
    metrics.inc("bytes_hit", hit.size);
  } else metrics.inc("misses");
  metrics.observe("get_seconds", (performance.now() - t0) / 1000);
}

export function createLocalCache(disk: DiskStore, metrics: Metrics): CacheHandler {
  return {
    synchronous: true,
    get(actionID: string): Hit | null {
      const t0 = performance.now();
      metrics.inc("gets");
      const hit = disk.get(actionID);
      countGet(metrics, t0, hit, "local");
      return hit;
    },
    put(actionID: string, outputID: string, size: number): PutWriter {
      const t0 = performance.now();
      metrics.inc("puts");
      const w = disk.put(actionID, outputID, size);
      return {
        write: (bytes) => w.write(bytes),
        commit() {
          const hit = w.commit();
          metrics.inc("bytes_put", size);
          metrics.observe("put_seconds", (performance.now() - t0) / 1000);
          return hit.diskPath;
        },
        abort() {
          metrics.inc("put_errors");
          w.abort();
        },
      };
    },
    close() {
      // Trimming is the owner's job, once `go` has its answer: plugin mode
      // and connect's fallback trim after the session, the daemon on a timer.
    },
  };
}
