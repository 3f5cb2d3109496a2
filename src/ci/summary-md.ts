// The Markdown of `gostash ci summary` (GitHub renders it in the job's
// summary page; it reads as plain text in any log too).

import { formatBytes } from "../util/bytes.ts";
import { formatSeconds } from "../util/summary.ts";
import type { CommandRow, JobReport } from "./summary.ts";
import type { CommandCounts } from "../buildcache/command-counts.ts";

function n(x: number): string {
  return x.toLocaleString("en-US");
}

function pct(part: number, whole: number): string {
  return whole ? `${((100 * part) / whole).toFixed(1)}%` : "-";
}

/** Backticks inside a code span would end it; a pipe would split a table cell. */
function code(s: string): string {
  return `\`${s.replace(/`/g, "'").replace(/\|/g, "\\|")}\``;
}

function commandCell(r: CommandRow): string {
  if (r.via === "other") return `_${r.command}_`;
  return `${code(r.command)}${r.via === "daemon+local" ? " (daemon away: local cache)" : ""}`;
}

function row(cells: string[]): string {
  return `| ${cells.join(" | ")} |`;
}

function countersCells(c: CommandCounts): string[] {
  const hits = c.hitsLocal + c.hitsRemote;
  return [
    n(c.gets),
    `${n(hits)} (${pct(hits, c.gets)})`,
    n(c.hitsRemote),
    n(c.misses),
    `~${formatSeconds(c.savedMs / 1000)}`,
    formatBytes(c.bytesFromBucket),
  ];
}

export function renderMarkdown(r: JobReport, title = "gostash"): string {
  const out: string[] = [];
  const t = r.totals;
  const hits = t.hitsLocal + t.hitsRemote;
  out.push(`### ${title}: ~${formatSeconds(t.savedMs / 1000)} of compute saved`, "");
  if (r.rows.length === 0) {
    out.push("No go command used gostash in this job (no records in the cache directory, and no daemon records).", "");
  } else {
    out.push(
      `${n(r.rows.length)} go command${r.rows.length === 1 ? "" : "s"}: ${n(hits)} hits of ${n(t.gets)} cache lookups (${pct(hits, t.gets)}), ` +
        `${n(t.hitsRemote)} of them from the bucket; ${n(t.misses)} misses rebuilt.`,
      "",
      row(["go command", "lookups", "hits", "from bucket", "misses", "time saved", "bytes from bucket", "uploaded"]),
      row(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:"]),
    );
    for (const x of r.rows) out.push(row([commandCell(x), ...countersCells(x.counters), x.uploads ? formatBytes(x.uploads.bytes) : "-"]));
    out.push(row(["**total**", ...countersCells(t).map((c) => `**${c}**`), r.uploads ? `**${formatBytes(r.uploads.bytes)}**` : "-"]), "");
  }
  if (r.slowest.length) {
    out.push("**Slowest misses** (rebuilt in this job):", "", row(["what", "took", "go command"]), row(["---", "---:", "---"]));
    for (const s of r.slowest) out.push(row([code(s.what), formatSeconds(s.costMs / 1000), code(s.command)]));
    out.push("");
  }
  out.push(...bucketLines(r), ...modproxyLines(r.daemon));
  if (t.hitsWithoutCost) {
    out.push(
      `${n(t.hitsWithoutCost)} hits were on entries with no recorded cost (stored without a miss before them, such as file lists and ` +
        "test outputs kept beside their run, or made before gostash measured costs); they count nothing in the time saved.",
      "",
    );
  }
  for (const note of r.notes) out.push(`> ⚠️ ${note}`, "");
  out.push("<sub>Time saved is estimated: the compute time each hit action took when it was last built (summed over parallel workers). See gostash's docs/ci.md.</sub>", "");
  return out.join("\n");
}

function bucketLines(r: JobReport): string[] {
  const d = r.daemon;
  if (d && ("uploads" in d || "remote_gets" in d || "upload_errors" in d)) {
    return [
      `**Bucket** (daemon): downloaded ${formatBytes(d.bytes_down ?? 0)} in ${n(d.hits_remote ?? 0)} hits; uploaded ${n(d.uploads ?? 0)} objects (${formatBytes(d.bytes_up ?? 0)})` +
        `, ${n((d.upload_errors ?? 0) + (d.upload_drops ?? 0))} failed or dropped; ${n(d.remote_errors ?? 0)} errors.`,
      "",
    ];
  }
  if (r.uploads) return [`**Bucket** (direct): uploaded ${n(r.uploads.count)} objects (${formatBytes(r.uploads.bytes)}), ${n(r.uploads.failed)} failed or dropped, ${n(r.uploads.left)} left at exit.`, ""];
  return [];
}

function modproxyLines(d: Record<string, number> | null): string[] {
  if (!d || !("modproxy_requests" in d)) return [];
  const hits = d.modproxy_hits ?? 0;
  const misses = d.modproxy_misses ?? 0;
  return [
    `**Module proxy:** ${n(d.modproxy_requests ?? 0)} requests, ${n(hits)} served from its disk, ${n(misses)} fetched from the bucket or upstream ` +
      `(${pct(hits, hits + misses)} hits); ${formatBytes(d.modproxy_bytes_served ?? 0)} served, ${formatBytes(d.modproxy_bytes_fetched ?? 0)} of module zips fetched.`,
    "",
  ];
}
