// The one-line-per-topic summary that --metrics prints to stderr at exit.

import { formatBytes } from "./bytes.ts";
import type { Metrics } from "./metrics.ts";
import { writeStderr } from "./std-output.ts";

export function summaryLines(m: Metrics): string[] {
  const gets = m.get("gets");
  const hits = m.get("hits_local") + m.get("hits_pack") + m.get("hits_remote");
  const pct = gets ? ((100 * hits) / gets).toFixed(1) : "0.0";
  const secs = ((performance.now() - m.startedAt) / 1000).toFixed(2);
  const lines = [
    `gets ${gets}, hits ${hits} (${pct}%; local ${m.get("hits_local")}, pack ${m.get("hits_pack")}, remote ${m.get("hits_remote")}), misses ${m.get("misses")}`,
    `puts ${m.get("puts")} (${formatBytes(m.get("bytes_put"))}), served ${formatBytes(m.get("bytes_hit"))}, errors ${m.get("errors")}, time ${secs}s`,
  ];
  if (m.counters.has("time_saved_seconds") || m.counters.has("costs_recorded") || m.counters.has("uncosted_hits")) lines.push(timeSavedLine(m));
  const get = m.histograms.get("get_seconds");
  if (get?.count) lines.push(`get latency mean ${((get.sum / get.count) * 1e6).toFixed(0)}µs over ${get.count}`);
  if (m.counters.has("remote_gets") || m.counters.has("uploads") || m.counters.has("s3_requests")) {
    lines.push(
      `s3: requests ${m.get("s3_requests")}, down ${formatBytes(m.get("bytes_down"))}; object gets ${m.get("remote_gets")}, hits ${m.get("hits_remote")}, ` +
        `misses ${m.get("remote_misses")}, errors ${m.get("remote_errors")}, integrity failures ${m.get("integrity_failures")}`,
      `s3: uploads ${m.get("uploads")} (${formatBytes(m.get("bytes_up"))}), failed ${m.get("upload_errors")}, dropped ${m.get("upload_drops")}, ` +
        `left at close ${m.get("upload_left")}, breaker trips ${m.get("breaker_trips")}`,
    );
  }
  if (TOOLCHAIN_COUNTERS.some((k) => m.counters.has(k))) lines.push(toolchainLine(m));
  if (PACK_COUNTERS.some((k) => m.counters.has(k))) lines.push(...packLines(m));
  const limits = LIMIT_COUNTERS.filter(([k]) => m.get(k) > 0);
  if (limits.length) lines.push(`limits: ${limits.map(([k, what]) => `${what} ${m.get(k)}`).join(", ")}`);
  return lines;
}

const TOOLCHAIN_COUNTERS = ["toolchain_new", "toolchain_misses", "toolchain_marks_up", "toolchain_mark_errors"];

/** Toolchain marks (buildcache/toolchain-mark.ts). */
function toolchainLine(m: Metrics): string {
  const seen = m.get("toolchain_new") ? "new to the bucket" : "known";
  return (
    `s3: toolchain ${seen}: misses without a GET ${m.get("toolchain_misses")}, marks written ${m.get("toolchain_marks_up")}, ` +
    `mark errors ${m.get("toolchain_mark_errors")}`
  );
}

/** Estimated compute time the hits saved (buildcache/costs.ts says how it is measured). */
export function timeSavedLine(m: Metrics): string {
  const costed = m.get("hits_local") + m.get("hits_pack") + m.get("hits_remote") - m.get("uncosted_hits");
  return (
    `time saved: ~${formatSeconds(m.get("time_saved_seconds"))} of compute by ${costed} hits with a recorded cost` +
    ` (${m.get("uncosted_hits")} hits without one), ${m.get("costs_recorded")} costs recorded`
  );
}

export function formatSeconds(s: number): string {
  if (s < 59.95) return `${s.toFixed(1)}s`;
  const secs = Math.round(s);
  if (secs < 3600) return `${Math.floor(secs / 60)}m${String(secs % 60).padStart(2, "0")}s`;
  const mins = Math.round(secs / 60);
  return `${Math.floor(mins / 60)}h${String(mins % 60).padStart(2, "0")}m`;
}

const PACK_COUNTERS = ["pack_head_gets", "pack_heads_seen", "pack_gets", "pack_uploads", "pack_upload_errors"];

/** Packs (docs/packs.md): what came from them, what went wrong, what went up. */
function packLines(m: Metrics): string[] {
  return [
    `packs: heads ${m.get("pack_heads")} (seen before ${m.get("pack_heads_seen")}, missing ${m.get("pack_heads_missing")}, bad ${m.get("pack_bad_heads")}), ` +
      `gets ${m.get("pack_gets")} (${formatBytes(m.get("pack_bytes_down"))}), entries landed ${m.get("pack_entries_landed")} ` +
      `(unused ${m.get("pack_entries_unused")}, already local ${m.get("pack_entries_local")}), bad entries ${m.get("pack_integrity_failures")}, errors ${m.get("pack_errors")}, ` +
      `known misses ${m.get("pack_known_misses")}`,
    `packs: uploads ${m.get("pack_uploads")} (${formatBytes(m.get("pack_bytes_up"))}, ${m.get("pack_entries_up")} entries), ` +
      `compactions ${m.get("pack_compactions")}, failed ${m.get("pack_upload_errors")}`,
  ];
}

/** Counters of refusals and waits by the resource limits (shown only when not zero). */
const LIMIT_COUNTERS: [string, string][] = [
  ["puts_over_limit", "puts over --max-put-size"],
  ["upload_drops_bytes", "uploads over --upload-queue-bytes"],
  ["request_timeouts", "gets over --request-timeout"],
  ["connections_refused", "connections over --max-connections"],
  ["inflight_waits", "waits at --max-inflight"],
  ["connections_idle_closed", "idle connections closed"],
  ["http_busy", "HTTP 503 over --max-http-requests"],
  ["http_too_large", "HTTP 413 over --max-http-body"],
];

export function printSummary(m: Metrics): void {
  writeStderr(summaryLines(m).map((l) => `gostash: ${l}\n`).join(""));
}
