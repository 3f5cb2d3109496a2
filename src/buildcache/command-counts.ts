// What one go command did with the build cache, counted from the
// CostTracker's events (costs.ts): the status page's per-command rows
// (commands-log.ts) and `gostash ci summary`'s records (src/ci/run-stats.ts)
// both count with countEvent, so the two always agree.

import type { CacheEvent } from "./costs.ts";

export interface CommandCounts {
  gets: number;
  /** Hits from what the local disk already held. */
  hitsLocal: number;
  /** Hits that came from the bucket (a pack or a single object). */
  hitsRemote: number;
  misses: number;
  /** Committed puts. */
  puts: number;
  /** Bytes of outputs served by hits. */
  bytesHit: number;
  /** Bytes of outputs that came from the bucket (uncompressed sizes). */
  bytesFromBucket: number;
  /** Bytes of outputs stored by committed puts. */
  bytesPut: number;
  /** Sum of the recorded costs of the hits: the estimated compute time saved. */
  savedMs: number;
  hitsWithoutCost: number;
}

export function zeroCounts(): CommandCounts {
  return { gets: 0, hitsLocal: 0, hitsRemote: 0, misses: 0, puts: 0, bytesHit: 0, bytesFromBucket: 0, bytesPut: 0, savedMs: 0, hitsWithoutCost: 0 };
}

export function addCounts(a: CommandCounts, b: CommandCounts): CommandCounts {
  const out = { ...a };
  for (const k of Object.keys(out) as (keyof CommandCounts)[]) out[k] += b[k];
  return out;
}

/** Adds one event to the counts. */
export function countEvent(c: CommandCounts, e: CacheEvent): void {
  if (e.kind === "miss") {
    c.gets++;
    c.misses++;
    return;
  }
  if (e.kind === "hit") {
    c.gets++;
    c.bytesHit += e.size;
    if (e.remote) {
      c.hitsRemote++;
      c.bytesFromBucket += e.size;
    } else c.hitsLocal++;
    if (e.costMs !== undefined) c.savedMs += e.costMs;
    else c.hitsWithoutCost++;
    return;
  }
  c.puts++;
  c.bytesPut += e.size;
}
