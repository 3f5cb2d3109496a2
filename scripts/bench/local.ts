#!/usr/bin/env bun
// Warm local builds: `go build std` and `go vet std` with
//   plain     the go command's own cache (no GOCACHEPROG)
//   gostash   GOCACHEPROG=dist/gostash (its cache: $GOCACHE, Go's format)
//   <ref>     the Go reference plugin: creachadair/gocache's diskcache, or
//             bradfitz/go-tool-cache's go-cacher where the module proxy
//             refuses gocache (see tools.sh); GOCACHEPROG="<ref> --cache-dir D"
//   floor     scripts/bench/floor-plugin: a plugin that only reads Go's
//             entry and answers, one request at a time. No plugin can do
//             much less, so floor / plain is the cost of the GOCACHEPROG
//             round trips themselves on this machine, the bound under which
//             no plugin's ratio can go.
// Each variant has its own cache directory holding the same entries, is
// warmed (and checked to compile nothing) first, and then the timed runs are
// interleaved round by round.
//
//   npx bun scripts/bench/local.ts [--runs 7] [--tasks build,vet] [--compare BIN] [--cost-log N] [--rebuild] [--keep]
//
// --compare BIN adds a fourth variant, "compare": another gostash binary
// (a candidate build) on its own copy of the cache.
// --cost-log N gives gostash's caches (and compare's) a cost book of N
// records (src/store/costs.ts: the seed's actions, then made-up ones), as on
// a machine gostash has served for weeks: its bound is about 100,000, and
// every go command with hits reads it. Written as appended records, with no
// index, as an older gostash left it: the warm-up runs are what index it.
//
// Filling a cache cold takes minutes on 2 cores, so it is done once: a seed
// cache in .bench/seed-<go version>/ is filled by the plain go command (and
// reused by later runs), then copied for plain and gostash (same format) and
// converted for the reference plugin (go-cacher's own layout), or filled
// through the plugin with one cold run when the reference is diskcache.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { cpus, loadavg } from "node:os";
import { COSTS_DIR } from "../../src/store/costs.ts";
import {
  benchDir,
  ensureGostash,
  ensureTools,
  goEnv,
  goVersion,
  interleave,
  intFlag,
  log,
  mustRun,
  parseFlags,
  ratioTable,
  referencePlugin,
  convertToGoCacher,
  run,
  samplesTable,
  setKeepTemps,
  tempDir,
  writeCostLog,
  type Samples,
  type Variant,
} from "./lib.ts";

const flags = parseFlags(Bun.argv.slice(2), { runs: "7", tasks: "build,vet", compare: "", "cost-log": "", rebuild: false, keep: false });
const runs = intFlag(flags, "runs");
const costLog = flags["cost-log"] ? intFlag(flags, "cost-log") : 0;
const tasks = String(flags.tasks)
  .split(",")
  .map((t) => t.trim())
  .filter(Boolean);
for (const t of tasks) if (t !== "build" && t !== "vet") throw new Error(`--tasks: unknown task ${t} (build, vet)`);

setKeepTemps(flags.keep === true);
const gostash = ensureGostash({ rebuild: flags.rebuild === true });
const tools = ensureTools();
const ref = referencePlugin(tools);
if (!ref) log("no reference plugin could be installed; measuring plain and gostash only");

const gover = goVersion();
const gostashVersion = (await mustRun([gostash, "version"])).stdout.trim() || (await mustRun([gostash, "version"])).stderr.trim();

// -------------------------------------------------------------- seed cache

const seed = join(benchDir, `seed-${gover}-cgo0`);
mkdirSync(seed, { recursive: true });
const work = tempDir("local");
for (const t of tasks) {
  const t0 = performance.now();
  const r = await mustRun(["go", t, "std"], { env: goEnv(seed), cwd: work });
  log(`seed cache: go ${t} std in ${(r.ms / 1000).toFixed(1)}s (${((performance.now() - t0) / 1000).toFixed(1)}s)`);
}

// -------------------------------------------------------------- variant dirs

const plainDir = join(work, "plain");
const gostashDir = join(work, "gostash");
await mustRun(["cp", "-a", seed, plainDir]);
await mustRun(["cp", "-a", seed, gostashDir]);
// --compare BIN: another gostash build (e.g. a candidate) as a fourth variant.
const alt = flags.compare ? String(flags.compare) : null;
const altDir = join(work, "compare");
if (alt) await mustRun(["cp", "-a", seed, altDir]);
const floorDir = join(work, "floor");
if (tools.floorPlugin) await mustRun(["cp", "-a", seed, floorDir]);
if (costLog > 0) {
  const real = writeCostLog(gostashDir, costLog);
  if (alt) await mustRun(["cp", "-a", join(gostashDir, COSTS_DIR), join(altDir, COSTS_DIR)]);
  log(`cost log: ${costLog} records (${real} of the seed's actions)`);
}


let refDir = "";
let refGocache = "";
if (ref) {
  refDir = join(work, ref.name);
  refGocache = join(work, `${ref.name}-gocache`);
  mkdirSync(refGocache, { recursive: true });
  if (ref.name === "go-cacher") {
    const n = convertToGoCacher(seed, refDir);
    log(`converted ${n} seed entries to go-cacher's layout`);
  } else {
    mkdirSync(refDir, { recursive: true });
    for (const t of tasks) {
      log(`filling the ${ref.name} cache: cold go ${t} std through the plugin (minutes) ...`);
      await mustRun(["go", t, "std"], { env: refEnv(), cwd: work });
    }
  }
}

function refEnv(extraArgs = ""): Record<string, string> {
  return goEnv(refGocache, { GOCACHEPROG: `${ref!.bin} --cache-dir ${refDir}${extraArgs}` });
}


// -------------------------------------------------------------- variants

interface Setup {
  name: string;
  env: (extra?: string) => Record<string, string>;
}

const setups: Setup[] = [
  { name: "plain", env: () => goEnv(plainDir) },
  { name: "gostash", env: (extra = "") => goEnv(gostashDir, { GOCACHEPROG: `${gostash}${extra}` }) },
];
if (ref) setups.push({ name: ref.name, env: (extra = "") => refEnv(extra) });
if (tools.floorPlugin) setups.push({ name: "floor", env: () => goEnv(floorDir, { GOCACHEPROG: tools.floorPlugin! }) });
if (alt) setups.push({ name: "compare", env: (extra = "") => goEnv(altDir, { GOCACHEPROG: `${alt}${extra}` }) });

const TOOL_RE = /pkg\/tool\/[^/\s]+\/(compile|asm|vet|link|cgo)\b/g;

const results: { task: string; samples: Samples[]; checks: string[] }[] = [];
for (const task of tasks) {
  const cmd = ["go", task, "std"];
  const checks: string[] = [];
  // Warm-up: one untimed run each, then a `-x` run that must run no tool.
  for (const s of setups) {
    await mustRun(cmd, { env: s.env(), cwd: work });
    const verbose = s.name === "gostash" || s.name === "compare" ? " --metrics" : "";
    const r = await mustRun(["go", task, "-x", "std"], { env: s.env(verbose), cwd: work });
    const tools = r.stderr.match(TOOL_RE)?.length ?? 0;
    const metrics = r.stderr
      .split("\n")
      .filter((l) => l.startsWith("gostash: gets"))
      .join("; ");
    checks.push(`${s.name}: ${tools} tool runs in a warm -x run${metrics ? ` (${metrics.replace("gostash: ", "")})` : ""}`);
    if (tools > 0) log(`WARNING: ${s.name} is not warm for go ${task} std (${tools} tool runs)`);
  }
  const variants: Variant[] = setups.map((s) => ({
    name: s.name,
    async once() {
      const r = await run(cmd, { env: s.env(), cwd: work });
      if (r.code !== 0) throw new Error(`${s.name}: go ${task} std exited ${r.code}\n${r.stderr.slice(-2000)}`);
      return { ms: r.ms, cpuMs: r.machineCpuMs };
    },
  }));
  const samples = await interleave(variants, runs, `go ${task} std: `);
  results.push({ task, samples, checks });
}

// -------------------------------------------------------------- report

const goals: Record<string, number> = { build: 1.2, vet: 1.03 };
const out: string[] = [];
out.push(`# warm local builds: gostash vs plain go cache vs ${ref ? ref.name : "(no reference plugin)"}`);
out.push(`go: ${gover}; gostash: ${gostashVersion}; ${cpus().length} cores; load average at end ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
if (ref) out.push(`reference: ${ref.note}`);
if (alt) out.push(`compare: ${alt} (${Bun.spawnSync([alt, "version"]).stdout.toString().trim()})`);
if (costLog > 0) out.push(`cost log: ${costLog} records in gostash's caches${alt ? " and compare's" : ""} (--cost-log)`);
out.push(`env: GOENV=off GOFLAGS=-mod=mod GOTOOLCHAIN=local GOTELEMETRY=off GOPROXY=off CGO_ENABLED=0; ${runs} interleaved runs per variant`);
for (const { task, samples, checks } of results) {
  out.push("", `## go ${task} std (warm)`, "");
  for (const c of checks) out.push(`check: ${c}`);
  out.push("", samplesTable(samples), "");
  const pairs: [string, string, number?][] = [["gostash", "plain", goals[task]]];
  if (ref) pairs.push([ref.name, "plain"], ["gostash", ref.name, 1.0]);
  if (tools.floorPlugin) pairs.push(["floor", "plain"], ["gostash", "floor"]);
  if (alt) pairs.push(["compare", "plain", goals[task]], ["compare", "gostash"]);
  out.push(ratioTable(samples, pairs));
}
out.push(
  "",
  ...(tools.floorPlugin
    ? ["floor: scripts/bench/floor-plugin, a plugin that only reads the entry and answers; floor / plain is what the round trips alone cost here, the least any GOCACHEPROG plugin can add."]
    : []),
  "ratios: 'of medians' = median(a)/median(b); 'paired median' = median over rounds of a/b in the same round (the goal is judged on it); 'cpu' = ratio of median user+sys CPU of go and its plugin.",
  `note: with a load average above the core count (${cpus().length}) wall times are dominated by other processes; the 'cpu' ratio is then the steadier signal.`,
);
console.log(out.join("\n"));

if (flags.keep) log(`kept ${work}`);
