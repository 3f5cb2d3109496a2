// The tables scripts/bench/s3.ts prints for one target: times, requests
// and bytes per variant, then the ratios the issue sets goals for, each a
// median of per-round ratios where both variants ran in the same round.

import { fmtMs, fmtRatio, median, table } from "./lib.ts";
import type { Target } from "./s3-targets.ts";

export interface Sample {
  ms: number;
  /** CPU the machine used over the variant's run (lib.ts machineBusyMs: the S3 server, the proxy and plugins included). */
  cpuMs?: number;
  /** The data floor's own CPU over its timed span (pack-floor.ts). */
  ownCpuMs?: number;
  /** CPU the S3 server (versitygw, on the same cores) used over the run. */
  serverCpuMs?: number;
  requests?: number;
  bytes?: number;
}

export class Results {
  private readonly by = new Map<string, { round: number; s: Sample }[]>();

  add(name: string, s: Sample, round?: number): void {
    const xs = this.by.get(name) ?? [];
    xs.push({ round: round ?? xs.length, s });
    this.by.set(name, xs);
  }

  has(name: string): boolean {
    return this.by.has(name);
  }

  median(name: string, field: keyof Sample = "ms"): number {
    return median((this.by.get(name) ?? []).map((x) => x.s[field] ?? NaN));
  }

  min(name: string): number {
    return Math.min(...(this.by.get(name) ?? []).map((x) => x.s.ms));
  }

  /** Median over rounds of a/b in the same round; ratio of medians when they never shared one. */
  paired(a: string, b: string, field: keyof Sample = "ms"): number {
    const xb = new Map((this.by.get(b) ?? []).map((x) => [x.round, x.s[field]]));
    const rs = (this.by.get(a) ?? []).filter((x) => xb.has(x.round)).map((x) => (x.s[field] ?? NaN) / (xb.get(x.round) ?? NaN));
    return rs.length ? median(rs) : this.median(a, field) / this.median(b, field);
  }
}

export interface ReportOptions {
  target: Target;
  results: Results;
  latencies: number[];
  goVersion: string;
  reference: string;
  runs: number;
  refRuns: number;
  coldRuns: number;
  /** Added to every request of the cold+upload runs (ms). */
  coldLatency: number;
  loadBefore: string;
  /** The binary of the compare variant (--compare), if it ran. */
  compare?: string | null;
}

/** One target's figures that --cpus sets side by side across core counts (s3-cores.ts). */
export interface TargetSummary {
  target: string;
  cores: number;
  latencies: { L: number; remoteWarm: number; tarball: number; floor: number; vsTarball: number; vsFloor: number }[];
  /** gostash cold+upload / plain cold (median of per-round ratios). */
  cold: number;
}

export function summarize(o: ReportOptions): TargetSummary {
  const r = o.results;
  const gw = (L: number) => `gostash remote-warm +${L}`;
  return {
    target: o.target.name,
    cores: navigator.hardwareConcurrency,
    latencies: o.latencies.map((L) => ({
      L,
      remoteWarm: r.median(gw(L)),
      tarball: r.median(`tarball +${L}`),
      floor: r.median(`floor +${L}`),
      vsTarball: r.paired(gw(L), `tarball +${L}`),
      vsFloor: r.paired(gw(L), `floor +${L}`),
    })),
    cold: r.paired("gostash cold+upload", "plain cold"),
  };
}

const mib = (n: number) => (Number.isNaN(n) ? "-" : (n / (1 << 20)).toFixed(1));

export function report(o: ReportOptions): void {
  const r = o.results;
  const row = (label: string, name: string): string[] | null =>
    r.has(name)
      ? [label, `${fmtMs(r.median(name))} (min ${fmtMs(r.min(name))})`, Number.isNaN(r.median(name, "requests")) ? "" : String(Math.round(r.median(name, "requests"))), Number.isNaN(r.median(name, "bytes")) ? "" : mib(r.median(name, "bytes"))]
      : null;
  const rows: (string[] | null)[] = [
    row("cold, plain go", "plain cold"),
    row("cold + upload, gostash", "gostash cold+upload"),
    row("cold + upload, go-cache-plugin", "gcp cold+upload"),
    row("cold + upload, --compare", "compare cold+upload"),
    row("local-warm, plain go", "plain local-warm"),
    row("local-warm, gostash", "gostash local-warm"),
    row("local-warm, go-cache-plugin", "gcp local-warm"),
  ];
  for (const L of o.latencies) {
    rows.push(
      row(`+${L} ms  remote-warm, gostash`, `gostash remote-warm +${L}`),
      row(`+${L} ms  tarball restore + plain go`, `tarball +${L}`),
      row(`+${L} ms  data floor (packs alone)`, `floor +${L}`),
      row(`+${L} ms  remote-warm, gostash through a daemon`, `daemon remote-warm +${L}`),
      row(`+${L} ms  remote-warm, go-cache-plugin`, `gcp remote-warm +${L}`),
      row(`+${L} ms  remote-warm, --compare`, `compare remote-warm +${L}`),
    );
  }
  const cmds = o.target.commands.map((c) => `go ${c.join(" ")}`).join(" + ");
  console.log(`\n# S3 tier, ${o.target.name}: ${cmds}; ${o.goVersion}; versitygw on loopback behind the fault proxy`);
  console.log(`# ${o.runs} round(s) per remote variant (go-cache-plugin ${o.refRuns}); reference ${o.reference}; load average at start ${o.loadBefore}\n`);
  console.log(table(["variant (whole run)", "time: median (min)", "requests", "MiB down"], rows.filter((x): x is string[] => x !== null)));

  const gw = (L: number) => `gostash remote-warm +${L}`;
  const ratioRow = (label: string, f: (L: number) => number, goal: string) => [label, ...o.latencies.map((L) => fmtRatio(f(L))), goal];
  const ratios = [
    ratioRow("gostash remote-warm / tarball restore", (L) => r.paired(gw(L), `tarball +${L}`), "≤ 0.80x"),
    ratioRow("gostash remote-warm / data floor", (L) => r.paired(gw(L), `floor +${L}`), "≤ 1.30x"),
    ratioRow("gostash remote-warm / gostash local-warm", (L) => r.median(gw(L)) / r.median("gostash local-warm"), "reported"),
    ratioRow("remote-warm through a daemon (the Action) / direct", (L) => r.paired(`daemon remote-warm +${L}`, gw(L)), "reported"),
    ratioRow("gostash remote-warm / go-cache-plugin remote-warm", (L) => r.paired(gw(L), `gcp remote-warm +${L}`), "reported"),
    ...(o.compare ? [ratioRow(`gostash remote-warm / --compare ${o.compare}`, (L) => r.paired(gw(L), `compare remote-warm +${L}`), "reported")] : []),
    ratioRow("gostash bytes down / tarball bytes", (L) => r.paired(gw(L), `tarball +${L}`, "bytes"), "< 1"),
    [
      "requests per remote-warm run: gostash (go-cache-plugin)",
      ...o.latencies.map((L) => `${r.median(gw(L), "requests")} (${r.has(`gcp remote-warm +${L}`) ? r.median(`gcp remote-warm +${L}`, "requests") : "-"})`),
      o.target.name === "std" ? "≤ 10" : "reported",
    ],
  ];
  console.log("\n" + table(["ratio (median of per-round ratios)", ...o.latencies.map((L) => `+${L} ms`), "goal"], ratios));
  cpuReport(o);
  const cold = r.paired("gostash cold+upload", "plain cold");
  const gcpCold =
    (r.has("gcp cold+upload") ? `; go-cache-plugin ${fmtRatio(r.paired("gcp cold+upload", "plain cold"))}` : "") +
    (r.has("compare cold+upload") ? `; --compare ${fmtRatio(r.paired("compare cold+upload", "plain cold"))}` : "");
  const rounds = o.coldRuns > 1 ? `median of ${o.coldRuns} rounds` : "one round: a single cold run varies by 15% here, --cold-runs 3 for a figure";
  const at = o.coldLatency ? ` at +${o.coldLatency} ms per request` : "";
  console.log(`\ngostash cold+upload${at} / plain cold: ${fmtRatio(cold)} (goal ≤ 1.15x)${gcpCold} (${rounds})`);
  const cpuOf = (name: string) => (r.has(name) ? `${name}: machine ${fmtMs(r.median(name, "cpuMs"))}, S3 server ${fmtMs(r.median(name, "serverCpuMs"))}` : null);
  const coldCpu = ["plain cold", "gostash cold+upload", "gcp cold+upload", "compare cold+upload"].map(cpuOf).filter(Boolean);
  // The S3 server shares the build's cores here; a CI runner's bucket is elsewhere.
  console.log(`CPU of the cold runs (median): ${coldCpu.join("; ")}`);
}

/**
 * CPU per run, and what it implies on this machine's cores. A remote-warm
 * build has to do at least the data floor's work (the packs landed and
 * verified: pack-floor.ts's own CPU over its timed span) and the go
 * command's own work with everything on disk (plain local-warm: go alone).
 * Spread perfectly over every core, their sum divided by the cores is the
 * least wall time a remote-warm build landing those bytes with this code
 * can take; the goals are set beside it. The other columns are the whole
 * machine's CPU over each variant (the S3 server and the proxy included).
 */
function cpuReport(o: ReportOptions): void {
  const r = o.results;
  const cores = navigator.hardwareConcurrency;
  const cpu = (name: string, field: keyof Sample = "cpuMs") => r.median(name, field);
  const goOwn = cpu("plain local-warm");
  const warm = ["plain local-warm", "gostash local-warm", "gcp local-warm"].filter((n) => r.has(n)).map((n) => `${n} ${fmtMs(cpu(n))}`);
  console.log(`\nMachine CPU per run (user + system of every process, median), ${cores} cores: ${warm.join(", ")}`);
  const rows = o.latencies.map((L) => {
    const bound = (cpu(`floor +${L}`, "ownCpuMs") + goOwn) / cores;
    return [
      `+${L} ms`,
      fmtMs(cpu(`gostash remote-warm +${L}`)),
      fmtMs(cpu(`tarball +${L}`)),
      `${fmtMs(cpu(`floor +${L}`))} (own ${fmtMs(cpu(`floor +${L}`, "ownCpuMs"))})`,
      fmtMs(bound),
      fmtRatio(bound / r.median(`tarball +${L}`)),
      fmtRatio(bound / r.median(`floor +${L}`)),
    ];
  });
  const head = ["", "remote-warm", "tarball + plain go", "data floor", "bound: (floor own + plain local-warm) / cores", "bound / tarball (goal ≤ 0.80x)", "bound / floor (goal ≤ 1.30x)"];
  console.log(table(head, rows));
}
