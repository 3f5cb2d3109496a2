// The status page's history, kept in the daemon so a page opened late still
// shows a trend: the charted metrics sampled every 5 s for the last hour and
// every minute for the last day, in two fixed rings (ring.ts). About 60
// series x 2,160 samples x 8 bytes: at most ~1 MiB, whatever the uptime.
//
// Counters are stored as their running totals (the page turns two samples
// into a rate); gauges (queue depth, disk use, open connections) as their
// value at the sample, and in the per-minute ring as the highest value of
// that minute, so a burst between two minute marks still shows.

import type { Metrics } from "../../util/metrics.ts";
import { SeriesRing, type SeriesRows } from "./ring.ts";

/** Metrics the page charts. */
const CHARTED = new Set([
  "gets", "misses", "puts", "bytes_hit", "bytes_put", "bytes_down", "bytes_up", "disk_bytes",
  "uploads", "upload_errors", "upload_drops", "upload_queue_depth", "upload_queue_bytes",
  "s3_errors", "remote_errors", "integrity_failures", "connections", "connections_total",
  "modproxy_requests", "modproxy_hits", "modproxy_misses", "modproxy_upstream_fetches", "modproxy_upstream_failures",
  "sumdb_requests", "modproxy_private_fetches",
]);
/** Families charted whatever their members: hits by tier, time saved, the reverse proxy. */
const CHARTED_PREFIXES = ["hits_", "time_saved", "revproxy_"];

export function isCharted(name: string): boolean {
  return CHARTED.has(name) || CHARTED_PREFIXES.some((p) => name.startsWith(p));
}

export type Resolution = "5s" | "1m";

export interface HistoryOptions {
  stepMs?: number;
  /** Fine samples kept (default: an hour of 5 s steps). */
  fineCapacity?: number;
  /** Fine samples per coarse one (default 12: one a minute). */
  coarseEvery?: number;
  /** Coarse samples kept (default: a day of minutes). */
  coarseCapacity?: number;
}

export interface HistoryRows extends SeriesRows {
  resolution: Resolution;
  stepMs: number;
}

export class History {
  readonly stepMs: number;
  private readonly fine: SeriesRing;
  private readonly coarse: SeriesRing;
  private readonly coarseEvery: number;
  private sinceCoarse = 0;
  /** Highest value of each gauge since the last coarse sample. */
  private gaugePeaks = new Map<string, number>();

  constructor(
    private readonly metrics: Metrics,
    o: HistoryOptions = {},
  ) {
    this.stepMs = o.stepMs ?? 5_000;
    this.fine = new SeriesRing(o.fineCapacity ?? 720);
    this.coarse = new SeriesRing(o.coarseCapacity ?? 1440);
    this.coarseEvery = o.coarseEvery ?? 12;
  }

  /** Takes one sample of the charted metrics at `now`. */
  sample(now = Date.now()): void {
    const values = chartedValues(this.metrics);
    this.fine.push(now, values);
    for (const name of this.metrics.gauges.keys()) {
      const v = values[name];
      if (v !== undefined) this.gaugePeaks.set(name, Math.max(v, this.gaugePeaks.get(name) ?? -Infinity));
    }
    if (++this.sinceCoarse < this.coarseEvery && this.coarse.size > 0) return;
    this.coarse.push(now, { ...values, ...Object.fromEntries(this.gaugePeaks) });
    this.sinceCoarse = 0;
    this.gaugePeaks = new Map();
  }

  /** Samples now and every stepMs from now on; returns the stop function. The timer never keeps the process alive. */
  start(): () => void {
    this.sample();
    const timer = setInterval(() => this.sample(), this.stepMs);
    timer.unref?.();
    return () => clearInterval(timer);
  }

  /** Samples of one resolution taken after `after` (ms since the epoch; 0: all kept). */
  rows(resolution: Resolution, after = 0): HistoryRows {
    const ring = resolution === "1m" ? this.coarse : this.fine;
    return { resolution, stepMs: resolution === "1m" ? this.stepMs * this.coarseEvery : this.stepMs, ...ring.since(after) };
  }
}

function chartedValues(metrics: Metrics): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, v] of Object.entries(metrics.snapshot())) if (isCharted(name)) out[name] = v;
  return out;
}
