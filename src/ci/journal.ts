// The daemon's side of `gostash ci summary`: what its clients did, per
// connection (one go command each, through `gostash connect`), served at
// GET /debug/runs.
//
// Each connection's handler is measured on its own (buildcache/open.ts), so
// every event carries its connection: a segment is exactly one connection's
// traffic, whether go commands run one after the other or at the same time.
// What the daemon cannot know is the go command's line: `gostash connect`
// writes it, with its time window, to the run log, and `ci summary` matches
// segments to those windows by time (summary.ts). A go command whose
// connection was closed for idleness and dialled again has two segments.
//
// Bounded: the newest MAX_SEGMENTS segments are kept.

import type { CostTracker } from "../buildcache/costs.ts";
import type { Router } from "../http/router.ts";
import type { Metrics } from "../util/metrics.ts";
import { describeOutput } from "./describe.ts";
import type { CommandCounts } from "../buildcache/command-counts.ts";
import { RunStats } from "./run-stats.ts";

const MAX_SEGMENTS = 1000;

export interface Segment {
  /** The daemon's connection number. */
  conn: number;
  /** Date.now() of its first and last event. */
  first: number;
  last: number;
  counters: CommandCounts;
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
    tracker.listen((e) => this.segment(e.conn ?? 0).add(e));
  }

  private segment(conn: number): RunStats {
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
