// What one go command (or one daemon connection) did with the cache, built
// from the CostTracker's events (buildcache/costs.ts): counters, and the
// slowest misses, i.e. the actions that had to be computed and took longest.

import { countEvent, zeroCounts } from "../buildcache/command-counts.ts";
import type { CacheEvent } from "../buildcache/costs.ts";

/** An action that missed and was computed: its cost, output, and the outputs put right after it. */
export interface SlowMiss {
  actionID: string;
  costMs: number;
  size: number;
  diskPath: string;
  next: string[];
  /** Filled in when the record is written (describe.ts). */
  what?: string;
}

export const SLOWEST = 10;
/** How many later puts a slow miss remembers (a test run's output is put right after its log). */
const FOLLOWERS = 3;

export class RunStats {
  readonly counters = zeroCounts();
  readonly slowest: SlowMiss[] = [];
  /** Date.now() of the first and last event, 0 before any. */
  first = 0;
  last = 0;
  /** Slow misses still collecting the puts that follow them. */
  private readonly listening: SlowMiss[] = [];

  add(e: CacheEvent, now = Date.now()): void {
    if (this.first === 0) this.first = now;
    this.last = now;
    countEvent(this.counters, e);
    if (e.kind !== "put") return;
    this.follow(e.diskPath);
    if (e.costMs !== undefined) this.consider({ actionID: e.actionID, costMs: e.costMs, size: e.size, diskPath: e.diskPath, next: [] });
  }

  private follow(diskPath: string): void {
    for (let i = this.listening.length - 1; i >= 0; i--) {
      const s = this.listening[i]!;
      s.next.push(diskPath);
      if (s.next.length >= FOLLOWERS) this.listening.splice(i, 1);
    }
  }

  /** Keeps the SLOWEST most costly misses, most costly first. */
  private consider(s: SlowMiss): void {
    const list = this.slowest;
    if (list.length >= SLOWEST && s.costMs <= list.at(-1)!.costMs) return;
    let i = list.length;
    while (i > 0 && list[i - 1]!.costMs < s.costMs) i--;
    list.splice(i, 0, s);
    if (list.length > SLOWEST) {
      const dropped = list.pop()!;
      const j = this.listening.indexOf(dropped);
      if (j >= 0) this.listening.splice(j, 1);
    }
    if (list.includes(s)) this.listening.push(s);
  }
}
