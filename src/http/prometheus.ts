// Prometheus text exposition format (version 0.0.4) for the process-wide
// Metrics: counters become `gostash_<name>_total`, gauges `gostash_<name>`,
// latency histograms `gostash_<name>_bucket/_sum/_count`. Counters that
// differ only by a dimension (hits by tier) are rendered as one family with
// a label. Unknown names still render, with a generic help line, so metrics
// added by other subsystems show up without touching this file.

import { LATENCY_BUCKETS, type Histogram, type Metrics } from "../util/metrics.ts";

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const PREFIX = "gostash_";

/** Counters folded into one labelled family: name -> [family, label, value]. */
const LABELLED: Record<string, [string, string, string]> = {
  hits_local: ["hits", "tier", "local"],
  hits_pack: ["hits", "tier", "pack"],
  hits_remote: ["hits", "tier", "remote"],
  revproxy_hits_memory: ["revproxy_hits", "tier", "memory"],
  revproxy_hits_local: ["revproxy_hits", "tier", "local"],
  revproxy_hits_remote: ["revproxy_hits", "tier", "remote"],
};

const HELP: Record<string, string> = {
  gets: "Build-cache get requests.",
  hits: "Get requests answered with a hit, by tier: the local disk, a pack (docs/packs.md), a per-action object.",
  misses: "Get requests answered with a miss.",
  puts: "Build-cache put requests.",
  put_errors: "Puts whose body was bad or cut short.",
  bytes_put: "Bytes of outputs stored by puts.",
  bytes_hit: "Bytes of outputs served by hits.",
  errors: "Requests that failed on the cache side (answered as misses or put errors).",
  remote_gets: "Get requests sent to the shared (S3) tier.",
  remote_misses: "Shared-tier gets that found nothing.",
  remote_errors: "Shared-tier requests that failed (timeouts, 5xx, network, auth).",
  integrity_failures: "Shared-tier objects rejected because their size or SHA-256 did not match.",
  bytes_down: "Bytes downloaded from the shared tier.",
  uploads: "Outputs uploaded to the shared tier.",
  bytes_up: "Bytes uploaded to the shared tier.",
  upload_errors: "Uploads that failed.",
  upload_drops: "Uploads dropped because the upload queue was full (by count or by bytes).",
  upload_left: "Uploads still pending when a flush deadline passed.",
  breaker_trips: "Times the circuit breaker stopped calls to a failing shared tier.",
  connections: "Open plugin connections (go commands attached to the daemon).",
  connections_total: "Plugin connections accepted.",
  connection_errors: "Plugin connections closed because they broke the protocol framing.",
  connections_aborted: "Plugin connections that hung up in the middle of a request.",
  auth_refused: "Plugin connections refused for a wrong or missing token.",
  connections_read_only: "Plugin connections authenticated with the read-only token.",
  read_only_puts: "Puts from read-only connections, kept in their private scratch stores (never shared).",
  http_unauthorized: "HTTP requests refused (401) for a wrong or missing token.",
  http_forbidden: "HTTP requests refused (403): a read-only token on a method other than GET/HEAD.",
  puts_over_limit: "Outputs over --max-put-size: kept on the local disk, never uploaded.",
  upload_drops_bytes: "Uploads dropped because --upload-queue-bytes were already waiting or in upload.",
  upload_queue_bytes: "Bytes of outputs waiting for or in upload.",
  request_timeouts: "Gets answered as misses because the shared tier took longer than --request-timeout.",
  connections_refused: "Plugin connections refused because --max-connections were open (their build used its local cache).",
  inflight_waits: "Times a plugin connection was not read because --max-inflight answers were pending (backpressure).",
  connections_idle_closed: "Plugin connections closed after --idle-timeout without a request.",
  http_busy: "HTTP requests refused (503) because --max-http-requests were being handled.",
  http_too_large: "HTTP requests refused (413) because their body was over --max-http-body.",
  http_in_flight: "HTTP requests being handled (not counting /healthz and /metrics).",
  revproxy_requests: "Reverse proxy: requests for listed hosts.",
  revproxy_hits: "Reverse proxy: requests answered from the cache, by tier.",
  revproxy_shared: "Reverse proxy: requests that joined a fetch of the same URL under way.",
  revproxy_fetches: "Reverse proxy: fills that went to the origin.",
  revproxy_fetch_errors: "Reverse proxy: origin requests or downloads that failed.",
  revproxy_passed_through: "Reverse proxy: requests the cache may not answer (not GET, Range, no-store), sent to the origin.",
  revproxy_not_cached: "Reverse proxy: origin answers not kept (no caching headers, no-store, private, too large).",
  revproxy_stored: "Reverse proxy: entries kept on the local disk.",
  revproxy_stored_memory: "Reverse proxy: short-lived answers kept in memory.",
  revproxy_integrity_failures: "Reverse proxy: local entries or bucket objects rejected because their SHA-256 or length did not match.",
  revproxy_store_errors: "Reverse proxy: answers served but not stored, because the local disk refused the entry's file.",
  revproxy_idle_closed: "Reverse proxy: front connections closed by --http-idle-timeout (no whole first line, or an idle tunnel).",
  revproxy_local_verifications: "Reverse proxy: local entries read and hashed before being served.",
  revproxy_remote_errors: "Reverse proxy: bucket requests that failed (the origin was asked instead).",
  revproxy_refused: "Reverse proxy: requests for hosts not in --revproxy (502).",
  revproxy_auth_refused: "Reverse proxy: requests and CONNECTs without a valid token (407).",
  revproxy_connect_terminated: "Reverse proxy: CONNECTs to listed hosts, answered with gostash's certificate.",
  revproxy_connect_tunnelled: "Reverse proxy: CONNECTs to other hosts, tunnelled untouched.",
  revproxy_tunnels_open: "Reverse proxy: CONNECT tunnels open now.",
  revproxy_memory_bytes: "Reverse proxy: bytes of short-lived answers held in memory.",
  revproxy_seconds: "Reverse proxy: time to an answer's headers, in seconds.",
  disk_bytes: "Bytes of entries and outputs in the local cache (measured at start, then kept current from writes and trims).",
  disk_max_bytes: "The local cache's size cap (--max-size).",
  trims: "Trims of the local cache that ran (Go's daily expiry, or the --max-size cap).",
  trim_removed_files: "Files removed from the local cache by trims.",
  trim_removed_bytes: "Bytes removed from the local cache by trims.",
  time_saved_seconds: "Estimated compute time saved by hits: the recorded miss-to-put time of each action hit (see docs/ci.md).",
  uncosted_hits: "Hits on entries with no recorded cost (not counted in time saved).",
  costs_recorded: "Puts whose action cost (miss-to-put time) was measured and recorded.",
  s3_requests: "Requests sent to the bucket (every kind: objects, pack heads and segments, uploads, the module mirror).",
  pack_head_gets: "Pack heads asked for (one per go command that missed locally or had something to pack).",
  pack_heads: "Pack heads read and accepted.",
  pack_heads_seen: "Pack heads a command took from what this machine saw within the hour, without a request.",
  pack_heads_missing: "Pack heads asked for that did not exist (nothing packed yet for that key).",
  pack_bad_heads: "Pack heads ignored because they did not decode, or were written for another key.",
  pack_head_errors: "Pack heads that could not be read (timeouts, 5xx, breaker open).",
  pack_gets: "GET requests for pack segments.",
  pack_lead_gets: "GET requests for a key's lead (the first segment of its first pack, asked for with the head).",
  pack_leads_used: "First segments landed from a key's lead instead of a GET sent after the head.",
  pack_leads_bad: "Leads whose entries did not all land (their segment was fetched from the pack itself).",
  pack_leads_unused: "Leads read but not used: they named another pack or range than the head (a writer's race), or came later than the head.",
  pack_leads_up: "Leads uploaded (one per key whenever a pack upload writes a new first pack).",
  pack_lead_errors: "Lead uploads that failed (readers then fetch the first segment after the head).",
  pack_bytes_down: "Bytes of packs downloaded.",
  pack_entries_landed: "Pack entries verified and written into the local store.",
  pack_entries_local: "Pack entries skipped because the local store had them already.",
  pack_entries_unused: "Pack entries landed that their go command never asked for (the cost of fetching whole packs).",
  pack_integrity_failures: "Pack entries rejected because their size or SHA-256 did not match (never served).",
  pack_errors: "Pack segments that failed (missing pack, cut or stalled body, truncated pack); their entries came as single objects.",
  pack_missing: "Packs named by a head but missing from the bucket.",
  toolchain_new: "Go commands whose toolchain (go version and platform) the bucket had no mark for.",
  toolchain_misses: "Gets answered as misses without a request: the bucket holds no outputs of the go command's toolchain (toolchains/ mark absent).",
  toolchain_marks_up: "Toolchain marks written (before the first upload of a toolchain new to the bucket, or to refresh one a day old).",
  toolchain_mark_errors: "Toolchain mark reads or writes that failed (the gets then ask the bucket as before).",
  pack_known_misses: "Gets answered as misses without a request: the head lists them as actions its writers could not store (a link).",
  pack_uploads: "Packs uploaded (each with its head).",
  pack_bytes_up: "Bytes of packs uploaded.",
  pack_entries_up: "Entries in the packs uploaded.",
  pack_compactions: "Pack uploads that replaced a head's whole list of packs (compaction).",
  pack_upload_errors: "Pack uploads given up (head unreadable, a PUT failed).",
  pack_skipped: "Pack uploads skipped: the head was full and the go command used too little of it to compact.",
  pack_entries_left_out: "Outputs left out of a pack because it reached --max-pack-size (they stay single objects).",
  pack_upload_seconds: "Time to build and upload a pack and its head, in seconds.",
  get_seconds: "Latency of get requests, in seconds.",
  put_seconds: "Latency of put requests, in seconds.",
};

/** Metric names may hold [a-zA-Z0-9_:] and not start with a digit. */
export function metricName(name: string): string {
  const n = name.replace(/[^a-zA-Z0-9_:]/g, "_");
  return PREFIX + (/^[0-9]/.test(n) ? `_${n}` : n);
}

function counterName(k: string): string {
  return k.endsWith("_total") ? metricName(k) : `${metricName(k)}_total`;
}

function escapeHelp(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

export function escapeLabel(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function num(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

export interface RenderOptions {
  /** Extra constant gauges, e.g. build info; rendered with labels as given. */
  info?: { name: string; help: string; labels: Record<string, string> }[];
}

export function renderPrometheus(m: Metrics, o: RenderOptions = {}): string {
  const out: string[] = [];
  const family = (name: string, type: string, help: string) => {
    out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
  };

  // Counters, grouping labelled ones into families.
  const families = new Map<string, { label: string; values: [string, number][] }>();
  const plain: [string, number][] = [];
  for (const [k, v] of [...m.counters].sort(([a], [b]) => a.localeCompare(b))) {
    const l = LABELLED[k];
    if (!l) {
      plain.push([k, v]);
      continue;
    }
    let f = families.get(l[0]);
    if (!f) families.set(l[0], (f = { label: l[1], values: [] }));
    f.values.push([l[2], v]);
  }
  // A labelled family is complete (a zero for a tier not hit yet): always
  // for the build cache's hits, once one member counted for the others (a
  // daemon without --revproxy shows no revproxy family).
  for (const [k, [fam, label, value]] of Object.entries(LABELLED)) {
    if (m.counters.has(k) || (fam !== "hits" && !families.has(fam))) continue;
    let f = families.get(fam);
    if (!f) families.set(fam, (f = { label, values: [] }));
    f.values.push([value, 0]);
  }
  for (const [k, v] of plain) {
    const name = counterName(k);
    family(name, "counter", HELP[k] ?? `Count of ${k.replace(/_/g, " ")}.`);
    out.push(`${name} ${num(v)}`);
  }
  for (const [fam, f] of [...families].sort(([a], [b]) => a.localeCompare(b))) {
    const name = counterName(fam);
    family(name, "counter", HELP[fam] ?? `Count of ${fam.replace(/_/g, " ")}.`);
    for (const [value, v] of f.values.sort(([a], [b]) => a.localeCompare(b))) {
      out.push(`${name}{${f.label}="${escapeLabel(value)}"} ${num(v)}`);
    }
  }

  for (const [k, read] of [...m.gauges].sort(([a], [b]) => a.localeCompare(b))) {
    let v: number;
    try {
      v = Number(read());
    } catch {
      continue;
    }
    const name = metricName(k);
    family(name, "gauge", HELP[k] ?? `Current ${k.replace(/_/g, " ")}.`);
    out.push(`${name} ${num(v)}`);
  }

  for (const [k, h] of [...m.histograms].sort(([a], [b]) => a.localeCompare(b))) {
    const name = metricName(k);
    family(name, "histogram", HELP[k] ?? `Distribution of ${k.replace(/_/g, " ")}.`);
    renderHistogram(out, name, h);
  }

  for (const i of o.info ?? []) {
    const name = metricName(i.name);
    family(name, "gauge", i.help);
    const labels = Object.entries(i.labels)
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(",");
    out.push(`${name}{${labels}} 1`);
  }

  out.push("");
  return out.join("\n");
}

function renderHistogram(out: string[], name: string, h: Histogram): void {
  let cum = 0;
  for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
    cum += h.counts[i]!;
    out.push(`${name}_bucket{le="${LATENCY_BUCKETS[i]}"} ${cum}`);
  }
  out.push(`${name}_bucket{le="+Inf"} ${h.count}`);
  out.push(`${name}_sum ${num(h.sum)}`);
  out.push(`${name}_count ${h.count}`);
}
