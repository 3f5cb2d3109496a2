// Shared helpers for the scripts/bench/ benchmarks.
//
// These machines are noisy (2 cores shared with other sessions), so every
// benchmark measures its variants side by side in one run, interleaved
// round by round (the order rotates each round), and reports medians,
// minimums and ratios against a baseline measured in the same rounds.
// Ratios are given two ways: median(variant) / median(baseline), and the
// median of the per-round paired ratios, which cancels slow phases of the
// machine that hit every variant of one round alike.

import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { COSTS_DIR, encodeRecord } from "../../src/store/costs.ts";

export const root = resolve(import.meta.dir, "../..");
export const gostashBin = join(root, "dist/gostash");
/** Scratch space for the benchmarks (git-ignored). */
export const benchDir = join(root, ".bench");

// ---------------------------------------------------------------- setup

/** Builds dist/gostash if it is missing (or if `rebuild`); warns if stale. */
export function ensureGostash(opts: { rebuild?: boolean } = {}): string {
  if (opts.rebuild || !existsSync(gostashBin)) {
    log(`building ${gostashBin} ...`);
    const p = Bun.spawnSync([process.execPath, join(root, "scripts/build.ts")], {
      cwd: root,
      stdout: "inherit",
      stderr: "inherit",
      env: { ...process.env, BUN_BE_BUN: undefined },
    });
    if (p.exitCode !== 0) die("building dist/gostash failed");
  } else {
    const built = statSync(gostashBin).mtimeMs;
    const newest = newestMtime(join(root, "src"));
    if (newest > built) log(`note: src/ is newer than dist/gostash; pass --rebuild to measure the current source`);
  }
  return gostashBin;
}

function newestMtime(dir: string): number {
  let m = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    m = Math.max(m, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return m;
}

export interface Tools {
  /** creachadair/gocache cmd/diskcache, if the module proxy served it. */
  diskcache?: string;
  /** bradfitz/go-tool-cache cmd/go-cacher. */
  goCacher?: string;
  /** scripts/bench/floor-plugin: the protocol round trip and nothing else. */
  floorPlugin?: string;
  /** scripts/bench/floor-bridge: `gostash connect`'s byte copying and nothing else. */
  floorBridge?: string;
}

/** Runs scripts/bench/tools.sh and returns the reference plugins it has. */
export function ensureTools(): Tools {
  const p = Bun.spawnSync(["bash", join(root, "scripts/bench/tools.sh")], { cwd: root, stderr: "inherit" });
  if (p.exitCode !== 0) die("scripts/bench/tools.sh failed");
  const tools: Tools = {};
  for (const line of p.stdout.toString().split("\n")) {
    const [k, v] = line.split("=", 2);
    if (k === "diskcache" && v) tools.diskcache = v;
    if (k === "go-cacher" && v) tools.goCacher = v;
    if (k === "floor-plugin" && v) tools.floorPlugin = v;
    if (k === "floor-bridge" && v) tools.floorBridge = v;
  }
  return tools;
}

/**
 * The Go reference plugin to compare with: diskcache when it could be
 * installed, else go-cacher. Both take `--cache-dir DIR`.
 */
export function referencePlugin(tools: Tools): { name: string; bin: string; note: string } | null {
  if (tools.diskcache) return { name: "diskcache", bin: tools.diskcache, note: "creachadair/gocache cmd/diskcache" };
  if (tools.goCacher) {
    return {
      name: "go-cacher",
      bin: tools.goCacher,
      note: "bradfitz/go-tool-cache cmd/go-cacher (stand-in: the module proxy here refuses creachadair/gocache, so diskcache cannot be installed)",
    };
  }
  return null;
}

/**
 * go-cacher stores <xx>/a-<action> as JSON {"v":1,"o":out,"n":size,"t":nanos}
 * and <xx>/o-<output> as the bytes. Converts every file entry of a Go cache.
 */
export function convertToGoCacher(from: string, to: string): number {
  let n = 0;
  for (const sub of readdirSync(from)) {
    if (!/^[0-9a-f]{2}$/.test(sub)) continue;
    for (const name of readdirSync(join(from, sub))) {
      if (!name.endsWith("-a")) continue;
      const line = readFileSync(join(from, sub, name), "latin1");
      const f = line.trim().split(/\s+/);
      if (f.length !== 5 || f[0] !== "v1") continue;
      const [, action, output, size, nanos] = f as [string, string, string, string, string];
      const src = join(from, output.slice(0, 2), `${output}-d`);
      let st;
      try {
        st = statSync(src);
      } catch {
        continue;
      }
      if (!st.isFile() || st.size !== Number(size)) continue; // Go 1.26 executable dirs: skip
      const odir = join(to, output.slice(0, 2));
      const adir = join(to, action.slice(0, 2));
      mkdirSync(odir, { recursive: true });
      mkdirSync(adir, { recursive: true });
      const dst = join(odir, `o-${output}`);
      if (!existsSync(dst)) copyFileSync(src, dst);
      writeFileSync(join(adir, `a-${action}`), JSON.stringify({ v: 1, o: output, n: Number(size), t: Number(nanos) }));
      n++;
    }
  }
  return n;
}

/** A fresh scratch directory under base (.bench/ by default); removed by cleanupTemps(). */
const temps: string[] = [];
let keepTemps = false;
/** Keep the scratch directories (for a look afterwards). */
export function setKeepTemps(keep: boolean): void {
  keepTemps = keep;
}
process.once("exit", () => {
  if (!keepTemps) cleanupTemps();
});
export function tempDir(prefix: string, base = benchDir): string {
  mkdirSync(base, { recursive: true });
  const d = mkdtempSync(join(base, `${prefix}-`));
  temps.push(d);
  return d;
}

export function cleanupTemps(): void {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
}

/**
 * The environment every `go` command of a benchmark runs in, the same for
 * all variants: no go env file (a developer's `go env -w GOCACHEPROG=...`
 * must not leak in), the local toolchain, no network, no telemetry, no cgo
 * (no C compiler in the loop, identical action graphs everywhere).
 */
export function goEnv(gocache: string, extra: Record<string, string> = {}): Record<string, string> {
  const keep = ["PATH", "HOME", "TMPDIR", "LANG", "USER"];
  const env: Record<string, string> = {};
  for (const k of keep) if (process.env[k] !== undefined) env[k] = process.env[k]!;
  Object.assign(env, {
    GOENV: "off",
    GOCACHE: gocache,
    GOFLAGS: "-mod=mod",
    GOTOOLCHAIN: "local",
    GOTELEMETRY: "off",
    GOPROXY: "off",
    CGO_ENABLED: "0",
    GOPATH: process.env.GOPATH ?? join(process.env.HOME ?? "/root", "go"),
  });
  return Object.assign(env, extra);
}

export function goVersion(): string {
  const p = Bun.spawnSync(["go", "env", "GOVERSION", "GOOS", "GOARCH"], { env: goEnv("/nonexistent") });
  return p.stdout.toString().trim().split("\n").join("-");
}

// ---------------------------------------------------------------- running

export interface RunResult {
  ms: number;
  /**
   * User+system CPU of the process and the children it waited for. Not a
   * GOCACHEPROG plugin's: the go command never waits for its plugin.
   */
  cpuMs: number;
  /** CPU the whole machine used meanwhile (machineBusyMs): plugins included. */
  machineCpuMs: number;
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion and times it (wall and CPU). */
export async function run(cmd: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<RunResult> {
  const busy0 = machineBusyMs();
  const t0 = performance.now();
  const p = Bun.spawn(cmd, { env: opts.env, cwd: opts.cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const ms = performance.now() - t0;
  const ru = p.resourceUsage();
  const cpuMs = ru ? Number(ru.cpuTime.total) / 1000 : NaN;
  return { ms, cpuMs, machineCpuMs: machineBusyMs() - busy0, code, stdout, stderr };
}

/** User + system CPU one running process has used so far (/proc/<pid>/stat), in ms; NaN if unknown. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces, in parentheses): utime and stime are the 12th and 13th.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

/**
 * CPU time every process of the machine has used since boot (user, nice,
 * system, irq, softirq, steal from /proc/stat), in ms; NaN where there is no
 * /proc. The difference over a run is that run's CPU with everything it
 * started, whether or not anyone waited for it (a GOCACHEPROG plugin is not
 * waited for), plus whatever else ran meanwhile: benches run on an idle
 * machine. Resolution: a clock tick (USER_HZ, 100 on Linux: 10 ms).
 */
export function machineBusyMs(): number {
  let stat: string;
  try {
    stat = readFileSync("/proc/stat", "utf8");
  } catch {
    return NaN;
  }
  const [user, nice, system, , , irq, softirq, steal] = stat.slice(0, stat.indexOf("\n")).trim().split(/\s+/).slice(1).map(Number);
  return ((user! + nice! + system! + irq! + softirq! + (steal ?? 0)) * 1000) / 100;
}

/** Runs and throws with the output if the command failed. */
export async function mustRun(cmd: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<RunResult> {
  const r = await run(cmd, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd.join(" ")} exited ${r.code}\n${r.stderr.slice(-4000)}`);
  }
  return r;
}

export interface Variant {
  name: string;
  /** One timed run; returns wall ms (and optionally CPU ms). */
  once(): Promise<{ ms: number; cpuMs?: number }>;
}

export interface Samples {
  name: string;
  ms: number[];
  cpuMs: number[];
}

/**
 * Runs each variant `runs` times, interleaved: round r runs the variants in
 * an order rotated by r (and reversed on odd rounds), so no variant always
 * goes first or always follows the same neighbour.
 */
export async function interleave(variants: Variant[], runs: number, label = ""): Promise<Samples[]> {
  const out = variants.map((v) => ({ name: v.name, ms: [] as number[], cpuMs: [] as number[] }));
  for (let r = 0; r < runs; r++) {
    const order = variants.map((_, i) => (i + r) % variants.length);
    if (r % 2 === 1) order.reverse();
    const parts: string[] = [];
    for (const i of order) {
      const res = await variants[i]!.once();
      out[i]!.ms.push(res.ms);
      out[i]!.cpuMs.push(res.cpuMs ?? NaN);
      parts.push(`${variants[i]!.name} ${fmtMs(res.ms)}`);
    }
    log(`${label}round ${r + 1}/${runs}: ${parts.join(", ")}`);
  }
  return out;
}

/**
 * A cost book (src/store/costs.ts) of n records in the Go cache dir, as on a
 * machine gostash has served for weeks: its own actions and then made-up
 * ones, shuffled, written as appended records with no index (as an older
 * gostash left them). Returns how many are the cache's own actions.
 */
export function writeCostLog(dir: string, n: number): number {
  const ids: string[] = [];
  for (const sub of readdirSync(dir)) {
    if (!/^[0-9a-f]{2}$/.test(sub)) continue;
    for (const name of readdirSync(join(dir, sub))) if (name.endsWith("-a") && ids.length < n) ids.push(name.slice(0, 64));
  }
  const real = ids.length;
  while (ids.length < n) ids.push(new Bun.CryptoHasher("sha256").update(`made-up action ${ids.length}`).digest("hex"));
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  const shards = new Map<string, Buffer[]>();
  for (const id of ids) {
    const recs = shards.get(id[0]!) ?? [];
    recs.push(encodeRecord(id, 50 + (parseInt(id.slice(8, 12), 16) % 2000)));
    shards.set(id[0]!, recs);
  }
  mkdirSync(join(dir, COSTS_DIR), { recursive: true });
  for (const [h, recs] of shards) writeFileSync(join(dir, COSTS_DIR, `${h}.log`), Buffer.concat(recs));
  return real;
}

/** A running `gostash serve`, its stderr drained (kept for stop()). */
export interface Serve {
  proc: Bun.Subprocess<"ignore", "ignore", "pipe">;
  /** Where its plugin socket is, as it said ("gostash serve: plugin on ..."). */
  plugin: string;
  /** SIGTERM, then its exit: code, time from the signal, all it wrote on stderr. */
  stop(): Promise<{ code: number; ms: number; stderr: string }>;
}

/** Starts `bin serve ...args` and resolves once it says where its plugin socket is. */
export async function startServe(bin: string, args: string[], env: Record<string, string>): Promise<Serve> {
  const proc = Bun.spawn([bin, "serve", ...args], { env, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  let err = "";
  const dec = new TextDecoder();
  let ready!: (plugin: string | null) => void;
  const started = new Promise<string | null>((r) => (ready = r));
  const reading = (async () => {
    for await (const c of proc.stderr) {
      err += dec.decode(c, { stream: true });
      const m = /gostash serve: plugin on ([^,\n]+)/.exec(err);
      if (m) ready(m[1]!);
    }
    ready(null);
  })();
  const plugin = await started;
  if (!plugin) die(`gostash serve did not start:\n${err.slice(-3000)}`);
  return {
    proc,
    plugin,
    async stop() {
      const t0 = performance.now();
      proc.kill("SIGTERM");
      const code = await proc.exited;
      await reading;
      return { code, ms: performance.now() - t0, stderr: err };
    },
  };
}

// ---------------------------------------------------------------- statistics

export function quantile(xs: number[], q: number): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export const median = (xs: number[]) => quantile(xs, 0.5);
export const p90 = (xs: number[]) => quantile(xs, 0.9);
export const p99 = (xs: number[]) => quantile(xs, 0.99);
export const min = (xs: number[]) => Math.min(...xs);
export const max = (xs: number[]) => Math.max(...xs);

/** Median of the per-round ratios a[i]/b[i] (paired samples). */
export function pairedRatio(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  const rs: number[] = [];
  for (let i = 0; i < n; i++) rs.push(a[i]! / b[i]!);
  return median(rs);
}

// ---------------------------------------------------------------- printing

export function fmtMs(ms: number): string {
  if (Number.isNaN(ms)) return "-";
  if (ms >= 1000) return `${(ms / 1000).toFixed(3)} s`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  if (ms >= 1) return `${ms.toFixed(2)} ms`;
  return `${(ms * 1000).toFixed(1)} µs`;
}

export function fmtRatio(r: number): string {
  return Number.isNaN(r) ? "-" : `${r.toFixed(3)}x`;
}

export function fmtBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

/** A plain-text table with right-aligned columns after the first. */
export function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join("  ").trimEnd();
  return [line(header), line(w.map((n) => "-".repeat(n))), ...rows.map(line)].join("\n");
}

/** Summary table of interleaved samples: median, min, p90, CPU median. */
export function samplesTable(samples: Samples[]): string {
  return table(
    ["variant", "runs", "median", "min", "p90", "max", "cpu median"],
    samples.map((s) => [
      s.name,
      String(s.ms.length),
      fmtMs(median(s.ms)),
      fmtMs(min(s.ms)),
      fmtMs(p90(s.ms)),
      fmtMs(max(s.ms)),
      fmtMs(median(s.cpuMs)),
    ]),
  );
}

/** Ratio rows "a/b" for the given pairs of sample names. */
export function ratioTable(samples: Samples[], pairs: [string, string, number?][]): string {
  const by = new Map(samples.map((s) => [s.name, s]));
  const rows: string[][] = [];
  for (const [a, b, goal] of pairs) {
    const sa = by.get(a);
    const sb = by.get(b);
    if (!sa || !sb) continue;
    const r = median(sa.ms) / median(sb.ms);
    const paired = pairedRatio(sa.ms, sb.ms);
    const minR = min(sa.ms) / min(sb.ms);
    const cpu = median(sa.cpuMs) / median(sb.cpuMs);
    const verdict = goal === undefined ? "" : paired <= goal ? `ok (goal ≤${goal.toFixed(2)}x)` : `MISSED (goal ≤${goal.toFixed(2)}x)`;
    rows.push([`${a} / ${b}`, fmtRatio(r), fmtRatio(paired), fmtRatio(minR), fmtRatio(cpu), verdict]);
  }
  return table(["ratio", "of medians", "paired median", "of mins", "cpu", "goal"], rows);
}

/** A loopback TCP port that was free a moment ago (for servers that take --http HOST:PORT). */
export async function freePort(): Promise<number> {
  const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const p = s.port!;
  s.stop(true);
  return p;
}

/** Waits until url answers (any status); dies if proc exits first or after ~10s. */
export async function waitHttp(url: string, proc: Bun.Subprocess, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) die(`${what} exited (${proc.exitCode})`);
    try {
      await fetch(url, { signal: AbortSignal.timeout(500) });
      return;
    } catch {
      await Bun.sleep(50);
    }
  }
  die(`${what} did not come up at ${url}`);
}

export function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

export function die(msg: string): never {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(1);
}

/** Minimal `--name value` / `--flag` parsing for the bench scripts. */
export function parseFlags(argv: string[], defaults: Record<string, string | boolean>): Record<string, string | boolean> {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("--")) die(`unexpected argument ${a}`);
    const [k, inline] = a.slice(2).split("=", 2) as [string, string | undefined];
    if (!(k in defaults)) die(`unknown flag --${k}; known: ${Object.keys(defaults).map((d) => `--${d}`).join(" ")}`);
    if (typeof defaults[k] === "boolean") out[k] = inline === undefined ? true : inline !== "false";
    else {
      const v = inline ?? argv[++i];
      if (v === undefined) die(`--${k} needs a value`);
      out[k] = v;
    }
  }
  return out;
}

/** A whole number of milliseconds, 0 allowed. */
export function msFlag(flags: Record<string, string | boolean>, k: string): number {
  const n = Number(flags[k]);
  if (!Number.isInteger(n) || n < 0) die(`--${k} must be a whole number of milliseconds (0 or more)`);
  return n;
}

export function intFlag(flags: Record<string, string | boolean>, k: string): number {
  const n = Number(flags[k]);
  if (!Number.isInteger(n) || n < 1) die(`--${k} must be a positive integer`);
  return n;
}
