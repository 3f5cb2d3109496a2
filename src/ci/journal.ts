// The daemon's side of `gostash ci summary`: what its clients did, per
// connection, served at GET /debug/runs.
//
// The plugin socket gives every read-write connection the same handler
// (src/daemon/server.ts), so events carry no connection. Each event is
// filed under the number of connections accepted so far
// (connections_total): go commands that run one after the other, as CI
// steps do, each get a segment of their own, exactly. Go commands attached
// at the same time share their events between their segments (the totals
// stay exact). `gostash connect` writes each go command's command line and
// time window to the run log, and `ci summary` matches segments to them by
// time (summary.ts).
//
// Bounded: the newest MAX_SEGMENTS segments are kept.

import type { CostTracker } from "../buildcache/costs.ts";
import type { Router } from "../http/router.ts";
import type { Metrics } from "../util/metrics.ts";
import { describeOutput } from "./describe.ts";
import { RunStats, type RunCounters } from "./run-stats.ts";

const MAX_SEGMENTS = 1000;

export interface Segment {
  /** connections_total when the segment's events came. */
  conn: number;
  /** Date.now() of its first and last event. */
  first: number;
  last: number;
  counters: RunCounters;
  slowest: { what: string; costMs: number }[];
}

/** What GET /debug/runs answers. */
export interface RunsAnswer {
  /** Date.now() when the daemon started. */
  started: number;
  segments: Segment[];
  /** The daemon's counters (bucket, uploads, module proxy). */
  metrics: Record<string, number>;
}

export class DaemonJournal {
  private readonly segments = new Map<number, RunStats>();
  private readonly described = new WeakMap<object, string>();
  private readonly started = Date.now();

  constructor(
    tracker: CostTracker,
    private readonly metrics: Metrics,
  ) {
    tracker.listen((e) => this.segment().add(e));
  }

  private segment(): RunStats {
    const conn = this.metrics.get("connections_total");
    let s = this.segments.get(conn);
    if (!s) {
      this.segments.set(conn, (s = new RunStats()));
      if (this.segments.size > MAX_SEGMENTS) this.segments.delete(this.segments.keys().next().value!);
    }
    return s;
  }

  answer(): RunsAnswer {
    const segments: Segment[] = [];
    for (const [conn, s] of this.segments) {
      const slowest = s.slowest.map((m) => {
        let what = this.described.get(m);
        if (what === undefined) this.described.set(m, (what = describeOutput(m.diskPath, m.size, m.next)));
        return { what, costMs: m.costMs };
      });
      segments.push({ conn, first: s.first, last: s.last, counters: { ...s.counters }, slowest });
    }
    return { started: this.started, segments, metrics: this.metrics.snapshot() };
  }
}

/** GET /debug/runs on the daemon's router (behind its token, like /debug/vars). */
export function serveRunJournal(router: Router, tracker: CostTracker, metrics: Metrics): DaemonJournal {
  const journal = new DaemonJournal(tracker, metrics);
  router.get("/debug/runs", () => Response.json(journal.answer()));
  return journal;
}
