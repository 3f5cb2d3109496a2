// The status page's data endpoint, GET /status.json: everything the page
// shows, as one JSON document read at one moment.
//
//   ?history=5s|1m   which history ring to include (default 5s)
//   ?since=<ms>      only samples taken after this time (the page asks for
//                    what it has not got yet; absent: all that is kept)
//
// Metrics are the same snapshot /debug/vars serves (every counter and
// gauge, by name), so each number on the page equals its /metrics sample.
// Nothing here can change state: it is read-only by construction.

import type { HistoryRows, Resolution } from "./history.ts";
import type { BucketView, CommandRow, FlagInEffect, ModuleCount, StatusSources } from "./sources.ts";

/** The bucket's state as the page names it. */
export type BucketState = "healthy" | "read-only" | "failing" | "breaker-open" | "recovering";

export interface StatusDocument {
  now: number;
  version: string;
  startedAt: number;
  uptimeSeconds: number;
  facts: Record<string, string | null>;
  metrics: Record<string, number>;
  /** The metric that measures time saved, or null: the page says "not measured". */
  timeSavedMetric: string | null;
  commands: { open: number; recent: CommandRow[] } | null;
  bucket: (BucketView & { state: BucketState }) | null;
  modproxy: { top: ModuleCount[] } | null;
  flags: FlagInEffect[];
  history: HistoryRows;
}

export interface HistoryQuery {
  resolution: Resolution;
  since: number;
}

/** Most requested modules shown. */
export const TOP_MODULES = 15;

export function historyQuery(url: URL): HistoryQuery {
  const since = Number(url.searchParams.get("since") ?? 0);
  return { resolution: url.searchParams.get("history") === "1m" ? "1m" : "5s", since: Number.isFinite(since) && since > 0 ? since : 0 };
}

export function bucketState(b: BucketView): BucketState {
  if (b.breaker === "open") return "breaker-open";
  if (b.breaker === "half-open") return "recovering";
  if (b.failingNow) return "failing";
  return b.readOnly ? "read-only" : "healthy";
}

/** The first metric that measures build time saved (added by whatever measures it), if any. */
export function timeSavedMetric(metrics: Record<string, number>): string | null {
  return Object.keys(metrics).filter((k) => k.startsWith("time_saved")).sort()[0] ?? null;
}

export function statusDocument(s: StatusSources, q: HistoryQuery, now = Date.now()): StatusDocument {
  const metrics = s.metrics.snapshot();
  const bucket = s.bucket?.() ?? null;
  return {
    now,
    version: s.version,
    startedAt: s.startedAt,
    uptimeSeconds: Math.max(0, (now - s.startedAt) / 1000),
    facts: s.facts,
    metrics,
    timeSavedMetric: timeSavedMetric(metrics),
    commands: s.commands?.() ?? null,
    bucket: bucket && { ...bucket, state: bucketState(bucket) },
    modproxy: s.topModules ? { top: s.topModules().slice(0, TOP_MODULES) } : null,
    flags: s.flags,
    history: s.history.rows(q.resolution, q.since),
  };
}
