// `gostash ci summary`: what gostash did in this job, per go command.
//
// Sources:
//   the run log (runlog.ts)   one record per go command: plugin mode with its
//                             own counters; connect with its command line and
//                             time window (plus what it served itself if the
//                             daemon was away)
//   the daemon (journal.ts)   GET /debug/runs: its per-connection segments and
//                             its counters (bucket, uploads, module proxy)
// Records are this job's (the same job ID, ci/job.ts), or without a job
// ID those newer than --since. A daemon segment (one connection) belongs to
// the connect record whose time window holds it (the innermost if windows
// nest: go commands started at the same instant can swap rows, the totals
// stay exact); the segments of no record that came during the job are
// shown as one row of other clients.

import { shortCommand, shownCommand, goSubcommand } from "./job.ts";
import { addCounts, zeroCounts, type CommandCounts } from "../buildcache/command-counts.ts";
import { readRuns, type RunRecord } from "./runlog.ts";
import type { RunsAnswer, Segment } from "./journal.ts";

/** Clock slack when placing a daemon segment inside a connect window (same machine, ms). */
const SLACK_MS = 250;
const DAEMON_TIMEOUT_MS = 5_000;

export interface CommandRow {
  command: string;
  /** build, test, vet, ... */
  sub: string | null;
  start: number;
  via: "plugin" | "daemon" | "daemon+local" | "other";
  counters: CommandCounts;
  uploads: RunRecord["uploads"];
  slowest: { what: string; costMs: number }[];
}

export interface JobReport {
  rows: CommandRow[];
  totals: CommandCounts;
  slowest: { what: string; costMs: number; command: string }[];
  /** The daemon's own counters, when one was asked. */
  daemon: Record<string, number> | null;
  /** Direct-mode uploads summed over the rows. */
  uploads: NonNullable<RunRecord["uploads"]> | null;
  notes: string[];
}

export interface SummaryOptions {
  cacheDir: string;
  job: string | null;
  /** Without a job ID: records that started at or after this (ms since the epoch). */
  since: number;
  /** The daemon's HTTP base URL, or null. */
  daemonURL: string | null;
  token?: string | null;
}

export async function gatherReport(o: SummaryOptions): Promise<JobReport> {
  const notes: string[] = [];
  const runs = readRuns(o.cacheDir)
    .filter((r) => (o.job ? r.job === o.job : r.start >= o.since))
    .sort((a, b) => a.start - b.start);
  let answer: RunsAnswer | null = null;
  if (o.daemonURL) {
    try {
      answer = await fetchRuns(o.daemonURL, o.token ?? null);
    } catch (err) {
      notes.push(`could not read the daemon's records at ${o.daemonURL}/debug/runs: ${(err as Error).message}`);
    }
  }
  // Daemon segments before the job's first go command are earlier jobs'. With
  // no record to go by, a job's daemon is taken to be its own (the Action's is).
  const jobStart = runs.length ? runs[0]!.start : o.job ? (answer?.started ?? Date.now()) : o.since;
  const rows = joinRows(runs, answer?.segments ?? [], jobStart);
  const slowest = slowestOf(rows);
  const direct = rows.map((r) => r.uploads).filter((u) => u !== null);
  const uploads = direct.length
    ? direct.reduce((a, u) => ({ count: a.count + u.count, bytes: a.bytes + u.bytes, failed: a.failed + u.failed, left: a.left + u.left }))
    : null;
  return { rows, totals: rows.reduce((t, r) => addCounts(t, r.counters), zeroCounts()), slowest, daemon: answer?.metrics ?? null, uploads, notes };
}

async function fetchRuns(base: string, token: string | null): Promise<RunsAnswer> {
  const res = await fetch(`${base.replace(/\/+$/, "")}/debug/runs`, {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    signal: AbortSignal.timeout(DAEMON_TIMEOUT_MS),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status} ${(await res.text()).trim().slice(0, 200)}`);
  const body = (await res.json()) as RunsAnswer;
  if (!Array.isArray(body?.segments)) throw new Error("the answer has no segments (a daemon older than this gostash?)");
  return body;
}

/** The rows in start order: one per record, daemon segments placed inside connect windows. */
export function joinRows(runs: RunRecord[], segments: Segment[], otherFrom: number): CommandRow[] {
  const rows = new Map<RunRecord, CommandRow>();
  for (const r of runs) rows.set(r, rowOf(r));
  const other: CommandRow = { command: "other clients of the daemon", sub: null, start: Infinity, via: "other", counters: zeroCounts(), uploads: null, slowest: [] };
  for (const seg of segments) {
    if (seg.counters.gets + seg.counters.puts === 0) continue;
    const owner = owningWindow(runs, seg);
    const row = owner ? rows.get(owner)! : seg.first >= otherFrom ? other : null;
    if (!row) continue;
    row.counters = addCounts(row.counters, seg.counters);
    row.slowest = [...row.slowest, ...seg.slowest].sort((a, b) => b.costMs - a.costMs).slice(0, 10);
    row.start = Math.min(row.start, seg.first);
  }
  const out = [...rows.values()].filter((r) => r.counters.gets + r.counters.puts > 0);
  if (other.counters.gets + other.counters.puts > 0) out.push(other);
  return out.sort((a, b) => a.start - b.start);
}

/**
 * The ten costliest misses of the job. One thing rebuilt can be two entries
 * (a test result is kept under two keys, with and without its flags): the
 * same description in the same command counts once.
 */
export function slowestOf(rows: CommandRow[]): JobReport["slowest"] {
  const best = new Map<string, JobReport["slowest"][number]>();
  for (const r of rows) {
    for (const s of r.slowest) {
      const key = `${r.command}\0${s.what}`;
      if ((best.get(key)?.costMs ?? -1) < s.costMs) best.set(key, { ...s, command: r.command });
    }
  }
  return [...best.values()].sort((a, b) => b.costMs - a.costMs).slice(0, 10);
}

function rowOf(r: RunRecord): CommandRow {
  return {
    // A job summary is shown to everyone who can see the run: -ldflags -X may carry a secret.
    command: shownCommand(r.argv) ?? shortCommand(null),
    sub: goSubcommand(r.argv),
    start: r.start,
    via: r.mode === "plugin" ? "plugin" : r.counters ? "daemon+local" : "daemon",
    counters: r.counters ? { ...zeroCounts(), ...r.counters } : zeroCounts(),
    uploads: r.uploads,
    slowest: r.slowest ?? [],
  };
}

/**
 * The connect record whose time window holds the segment: the one it lies
 * least outside of (at most SLACK_MS), and among windows that hold it alike,
 * the one that started last (the innermost, if windows nest).
 */
export function owningWindow(runs: RunRecord[], seg: Segment): RunRecord | null {
  let best: RunRecord | null = null;
  let bestOutside = Infinity;
  for (const r of runs) {
    if (r.mode !== "connect") continue;
    const outside = Math.max(0, r.start - seg.first) + Math.max(0, seg.last - r.end);
    if (outside > SLACK_MS) continue;
    if (outside < bestOutside || (outside === bestOutside && r.start > best!.start)) {
      best = r;
      bestOutside = outside;
    }
  }
  return best;
}
