#!/usr/bin/env bun
// The shared S3 tier, side by side in one run, per target (s3-targets.ts:
// `go build std`; golang.org/x/tools `go build ./...` + `go test -run XXX
// ./...`), on one S3 server (versitygw on loopback) behind the fault proxy
// (test/helpers/faultproxy.ts) adding latency to every request:
//
//   npx bun scripts/bench/s3.ts [--runs 2] [--ref-runs 1] [--cold-runs 1] [--cold-latency 0] [--latencies 0,20,50]
//                               [--targets std,x/tools] [--tools-version v0.52.0]
//                               [--no-ref] [--rebuild] [--keep] [--compare BIN]
//                               [--scratch DIR] [--cpus 1,2]
//
// Variants, all wall time of the target's whole run (every command; plugin
// start-up and the flush at close included):
//   cold            empty local cache, plain go (no plugin)
//   cold+upload     empty local cache and empty prefix, the plugin uploading
//                   (direct mode: close waits for the uploads, packs included);
//                   straight to the S3 server, or through the proxy with
//                   --cold-latency ms per request (the bucket's round trips
//                   for every miss: toolchain marks, docs/toolchain-marks.md)
//   local-warm      the plugin's local cache as its cold run left it
//   remote-warm     empty local cache, bucket filled by the cold+upload run,
//                   every request through the proxy with +L ms
//   tarball         machine A's whole cache after the cold run, as
//                   actions/cache saves it (s3-tarball.ts): one GET through
//                   the same proxy streamed into tar -x, then plain go
//   daemon          remote-warm through a fresh `gostash serve` on the empty
//                   local cache, the go commands through `gostash connect`
//                   (how the GitHub Action runs a fresh runner's build);
//                   the daemon's start is not timed, as the Action starts it
//                   before the build step
//   compare         remote-warm with another gostash binary (--compare: a
//                   build of an earlier commit), on the same bucket prefix;
//                   and its own cold+upload, to a prefix of its own
//   data floor      the packs the run needs, downloaded, decompressed,
//                   written and verified alone, with no go command
//                   (pack-floor.ts; its own timer, no process start-up)
// Each variant's CPU is the whole machine's over its run (lib.ts
// machineBusyMs: the go command never waits for its GOCACHEPROG plugin, so
// the plugin's CPU is in no rusage of the go command); the report sets the
// remote-warm goals beside the least time a run landing the data floor's
// bytes could take on this machine's cores, and names the S3 server's share
// of the cold runs (it runs on the same cores; a CI runner's bucket does not).
// Remote variants are interleaved round by round (the order rotates)
// because the machine is noisy; ratios are medians of per-round ratios.
// go-cache-plugin (built at a pinned version into .tools/bin) runs
// --ref-runs rounds only: at +50 ms it makes one GET per output in series.
//
// --scratch DIR puts every variant's local cache on another file system
// (scripts/bench/fresh-fs.sh makes a fresh ext4 like a CI runner's): every
// variant creates thousands of files per run, and a file system that has
// already created and deleted millions of them can be several times slower
// at it than a fresh one (measured here: the data floor of std took 1.6 s
// on this machine's root file system and 0.44 s on a fresh ext4), which
// drowns the differences being measured. The header names the file system.
//
// --cpus 1,2 runs the whole bench once per core count, each under taskset
// with everything on those cores, and ends with the goals side by side
// (s3-cores.ts): every remote-warm variant here is CPU-bound, so how the
// ratios move with cores is part of the result.
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createS3Client, type S3Client } from "../../src/s3/client.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { startFaultProxy, type FaultProxy } from "../../test/helpers/faultproxy.ts";
import { startS3Server, type S3Server } from "../../test/helpers/s3server.ts";
import { ensureGoCachePlugin, ensureVersitygw } from "./s3-tools.ts";
import { benchPerCoreCount, parseCpus } from "./s3-cores.ts";
import { report, Results, summarize, type Sample, type TargetSummary } from "./s3-report.ts";
import { restoreTarball, saveTarball, tarballName } from "./s3-tarball.ts";
import { targetNamed, type Target } from "./s3-targets.ts";
import { die, ensureGostash, fmtMs, startServe, machineBusyMs, processCpuMs, goEnv, goVersion, intFlag, log, msFlag, parseFlags, root, run, setKeepTemps, tempDir } from "./lib.ts";

const flags = parseFlags(Bun.argv.slice(2), {
  runs: "2",
  "ref-runs": "1",
  "cold-runs": "1",
  "cold-latency": "0",
  latencies: "0,20,50",
  targets: "std,x/tools",
  "tools-version": "v0.52.0",
  "no-ref": false,
  compare: "",
  rebuild: false,
  keep: false,
  scratch: "",
  cpus: "",
  "summary-json": "",
});
const runs = intFlag(flags, "runs");
const refRuns = Math.min(runs, intFlag(flags, "ref-runs"));
const coldRuns = intFlag(flags, "cold-runs");
const coldLatency = msFlag(flags, "cold-latency");
const latencies = String(flags.latencies)
  .split(",")
  .map((s) => Number(s.trim()))
  .filter((n) => Number.isFinite(n) && n >= 0);
setKeepTemps(flags.keep === true);

interface Ctx {
  bin: string;
  /** Another gostash binary to run remote-warm with (--compare), or null. */
  compare: string | null;
  gcp: string | null;
  s3: S3Server;
  proxy: FaultProxy;
  /** Talks to the proxy (tarball restores). */
  viaProxy: S3Client;
  scratch: string;
  /** Directories made since the last variant ended (removed after it, outside its time). */
  made: string[];
}

type Tool = "plain" | "gostash" | "compare" | "gcp";

let seq = 0;
function fresh(ctx: Ctx, name: string): string {
  const d = join(ctx.scratch, `${name}-${++seq}`);
  mkdirSync(d, { recursive: true });
  ctx.made.push(d);
  return d;
}

/** The env of one plugin (or plain go with plugin null) run with this local dir, endpoint and prefix. */
function envFor(ctx: Ctx, tool: Tool, local: string, endpoint: string, prefix: string): Record<string, string> {
  const s3env = { ...ctx.s3.env, GOCACHE_S3_ENDPOINT_URL: endpoint, GOCACHE_KEY_PREFIX: prefix };
  if (tool === "plain") return goEnv(local);
  if (tool === "gostash") return goEnv(local, { ...s3env, GOCACHEPROG: `${ctx.bin} --metrics` });
  if (tool === "compare") return goEnv(local, { ...s3env, GOCACHEPROG: `${ctx.compare} --metrics` });
  const g = `${ctx.gcp} --cache-dir=${local} --bucket=${ctx.s3.bucket} --region=${ctx.s3.region} --s3-endpoint-url=${endpoint} --s3-path-style --prefix=${prefix}`;
  return goEnv(fresh(ctx, "gcp-gocache"), { ...s3env, GOCACHE_DIR: local, GOCACHEPROG: g });
}

/** Every command of the target, in order; wall time of all, stderr of all. */
async function runTarget(t: Target, label: string, env: Record<string, string>): Promise<{ ms: number; cpuMs: number; stderr: string }> {
  let ms = 0;
  let cpuMs = 0;
  let stderr = "";
  for (const cmd of t.commands) {
    const r = await run(["go", ...cmd], { env, cwd: t.dir });
    if (r.code !== 0) die(`${label}: go ${cmd.join(" ")} failed (${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-3000)}`);
    ms += r.ms;
    cpuMs += r.machineCpuMs;
    stderr += r.stderr;
  }
  log(`  ${label}: ${fmtMs(ms)} (CPU ${fmtMs(cpuMs)})`);
  return { ms, cpuMs, stderr };
}

/** Bytes gostash downloaded, from its --metrics summaries ("s3: requests N, down 40.1 MiB"). */
function gostashBytesDown(stderr: string): number {
  let n = 0;
  const units: Record<string, number> = { B: 1, KiB: 1 << 10, MiB: 1 << 20, GiB: 1 << 30 };
  for (const m of stderr.matchAll(/s3: requests \d+, down ([\d.]+) (B|KiB|MiB|GiB)/g)) n += Number(m[1]) * units[m[2]!]!;
  return n;
}

async function benchTarget(ctx: Ctx, t: Target, res: Results): Promise<void> {
  const px = (tool: string) => `${t.name.replace(/\W+/g, "-")}-${tool}`;
  const tools = ctx.gcp ? (["gostash", "gcp"] as const) : (["gostash"] as const);
  log(`${t.name}: cold runs (${coldRuns} rounds: minutes each on 2 cores${coldLatency ? `; +${coldLatency} ms per request` : ""}) ...`);
  ctx.proxy.set({ latencyMs: coldLatency });
  const coldEndpoint = coldLatency ? ctx.proxy.endpoint : ctx.s3.endpoint;
  // Round 0's caches and prefixes are machine A for everything after; later
  // rounds upload to prefixes of their own (empty, as a cold run needs) and
  // their caches go once measured. The order rotates like the remote rounds.
  let plainDir = "";
  const local: Record<string, string> = {};
  const coldVariants: Tool[] = ["plain", ...tools, ...(ctx.compare ? (["compare"] as const) : [])];
  for (let r = 0; r < coldRuns; r++) {
    for (let i = 0; i < coldVariants.length; i++) {
      const tool = coldVariants[(i + r) % coldVariants.length]!;
      const dir = fresh(ctx, `${tool}-${r ? `cold${r}` : "A"}`);
      if (r === 0 && tool === "plain") plainDir = dir;
      else if (r === 0 && tool !== "compare") local[tool] = dir;
      const name = tool === "plain" ? "plain cold" : `${tool} cold+upload`;
      const env = tool === "plain" ? envFor(ctx, "plain", dir, "", "") : envFor(ctx, tool, dir, coldEndpoint, r ? `${px(tool)}-cold${r}` : px(tool));
      const server0 = processCpuMs(ctx.s3.pid);
      const { ms, cpuMs } = await runTarget(t, name, env);
      res.add(name, { ms, cpuMs, serverCpuMs: processCpuMs(ctx.s3.pid) - server0 }, r);
      if (r || tool === "compare") rmSync(dir, { recursive: true, force: true });
    }
  }
  const tarFile = join(ctx.scratch, "cache.tar.zst");
  const tarBytes = saveTarball(local.gostash!, tarFile);
  const admin = createS3Client(clientConfig(ctx.s3, ctx.s3.endpoint), { metrics: new Metrics(), logger: createLogger({}) });
  await admin.put(tarballName(t.name), Bun.file(tarFile));
  admin.close();
  log(`${t.name}: tarball of machine A's cache: ${(tarBytes / (1 << 20)).toFixed(1)} MiB`);

  log(`${t.name}: local-warm (${runs} rounds) ...`);
  for (let r = 0; r < runs; r++) {
    res.add("plain local-warm", await runTarget(t, "plain local-warm", envFor(ctx, "plain", plainDir, "", "")));
    for (const tool of tools) res.add(`${tool} local-warm`, await runTarget(t, `${tool} local-warm`, envFor(ctx, tool, local[tool]!, ctx.s3.endpoint, px(tool))));
  }

  ctx.made.length = 0; // machine A's caches stay for the whole target
  const heads = (await ctx.s3.listKeys()).filter((k) => k.startsWith(`${px("gostash")}/packs/`) && k.endsWith(".head"));
  const keys = heads.map((k) => k.slice(k.lastIndexOf("/") + 1, -".head".length));
  for (const L of latencies) {
    ctx.proxy.set({ latencyMs: L });
    log(`${t.name}: remote-warm at +${L} ms per request (${runs} rounds) ...`);
    const variants: [string, () => Promise<Sample>][] = [
      [`gostash remote-warm +${L}`, async () => remoteWarm(ctx, t, "gostash", px("gostash"))],
      [`tarball +${L}`, async () => tarballRestore(ctx, t, tarBytes)],
      [`floor +${L}`, async () => dataFloor(ctx, px("gostash"), keys)],
      [`daemon remote-warm +${L}`, async () => daemonRemoteWarm(ctx, t, px("gostash"))],
    ];
    if (ctx.gcp) variants.push([`gcp remote-warm +${L}`, async () => remoteWarm(ctx, t, "gcp", px("gcp"))]);
    if (ctx.compare) variants.push([`compare remote-warm +${L}`, async () => remoteWarm(ctx, t, "compare", px("gostash"))]);
    for (let r = 0; r < runs; r++) {
      const order = variants.map((_, i) => variants[(i + r) % variants.length]!);
      for (const [name, once] of r % 2 ? order.reverse() : order) {
        if (name.startsWith("gcp") && r >= refRuns) continue;
        ctx.proxy.resetCounts();
        res.add(name, await once(), r);
        // Each variant's caches go once it is measured: a --scratch file
        // system need only hold one, and nothing is deleted while timed.
        for (const d of ctx.made.splice(0)) rmSync(d, { recursive: true, force: true });
      }
    }
  }
  ctx.proxy.reset();
}

async function remoteWarm(ctx: Ctx, t: Target, tool: "gostash" | "compare" | "gcp", prefix: string): Promise<{ ms: number; cpuMs: number; requests: number; bytes?: number }> {
  const r = await runTarget(t, `${tool} remote-warm`, envFor(ctx, tool, fresh(ctx, `${tool}-B`), ctx.proxy.endpoint, prefix));
  return { ms: r.ms, cpuMs: r.cpuMs, requests: ctx.proxy.requests, bytes: tool === "gcp" ? undefined : gostashBytesDown(r.stderr) };
}

/** Remote-warm through a daemon started on an empty local cache (its start untimed), as the Action runs it. */
async function daemonRemoteWarm(ctx: Ctx, t: Target, prefix: string): Promise<{ ms: number; cpuMs: number; requests: number }> {
  const env = envFor(ctx, "gostash", fresh(ctx, "daemon-B"), ctx.proxy.endpoint, prefix);
  const d = await startServe(ctx.bin, ["--plugin=127.0.0.1:0", "--http=127.0.0.1:0"], env);
  try {
    const r = await runTarget(t, "daemon remote-warm", { ...env, GOCACHEPROG: `${ctx.bin} connect ${d.plugin}` });
    return { ms: r.ms, cpuMs: r.cpuMs, requests: ctx.proxy.requests };
  } finally {
    await d.stop();
  }
}

async function tarballRestore(ctx: Ctx, t: Target, bytes: number): Promise<{ ms: number; cpuMs: number; requests: number; bytes: number }> {
  const dir = fresh(ctx, "tar-B");
  const t0 = performance.now();
  const busy0 = machineBusyMs();
  const tarCpuMs = await restoreTarball(ctx.viaProxy, tarballName(t.name), dir);
  const restored = performance.now() - t0;
  const restoreCpuMs = machineBusyMs() - busy0;
  const r = await runTarget(t, `tarball (restored in ${fmtMs(restored)}, CPU ${fmtMs(restoreCpuMs)}, tar and zstd ${fmtMs(tarCpuMs)}) + plain go`, envFor(ctx, "plain", dir, "", ""));
  return { ms: restored + r.ms, cpuMs: restoreCpuMs + r.cpuMs, requests: ctx.proxy.requests, bytes };
}

async function dataFloor(ctx: Ctx, prefix: string, keys: string[]): Promise<{ ms: number; cpuMs: number; ownCpuMs: number; requests: number; bytes: number }> {
  const busy0 = machineBusyMs();
  const args = ["--endpoint", ctx.proxy.endpoint, "--bucket", ctx.s3.bucket, "--prefix", prefix, "--dir", fresh(ctx, "floor")];
  const r = await run([process.execPath, join(root, "scripts/bench/pack-floor.ts"), ...args, ...keys], { env: { ...process.env, ...ctx.s3.env } as Record<string, string> });
  if (r.code !== 0) die(`pack-floor failed:\n${r.stderr.slice(-2000)}`);
  const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { ms: number; cpuMs: number; requests: number; bytes: number; bad: number };
  if (out.bad) die(`pack-floor: ${out.bad} bad entries`);
  const cpuMs = machineBusyMs() - busy0;
  log(`  data floor: ${fmtMs(out.ms)} (CPU ${fmtMs(cpuMs)} with start-up, ${fmtMs(out.cpuMs)} its own over its time)`);
  return { ...out, cpuMs, ownCpuMs: out.cpuMs };
}

function clientConfig(s3: S3Server, endpoint: string) {
  return { bucket: s3.bucket, prefix: "", endpoint, region: s3.region, pathStyle: true, minUploadSize: 0, uploadConcurrency: 1, concurrency: 4, readOnly: false, flushTimeoutMs: 0, compress: false, timeoutMs: 60_000 };
}

/** Where the variants' local caches go: under --scratch, or .bench/. */
function scratchDir(): string {
  if (!flags.scratch) return tempDir("s3");
  const base = String(flags.scratch);
  if (!existsSync(base)) die(`--scratch ${base}: no such directory (scripts/bench/fresh-fs.sh makes one)`);
  return tempDir("s3", base);
}

/** "ext4 rw,relatime on /dev/vda" for the file system holding dir (findmnt), or "?". */
function fileSystemOf(dir: string): string {
  const p = Bun.spawnSync(["findmnt", "-n", "-o", "FSTYPE,OPTIONS,SOURCE", "-T", dir], { stderr: "ignore" });
  const [type, options, source] = p.stdout.toString().trim().split(/\s+/);
  return p.exitCode === 0 && type ? `${type} ${options} on ${source}` : "file system unknown";
}

async function main(): Promise<void> {
  const bin = ensureGostash({ rebuild: flags.rebuild === true });
  ensureVersitygw();
  const gcp = flags["no-ref"] ? { bin: null, note: "skipped (--no-ref)" } : ensureGoCachePlugin();
  const targets = String(flags.targets).split(",").map((n) => targetNamed(n.trim(), String(flags["tools-version"])));
  const load = (await Bun.file("/proc/loadavg").text().catch(() => "?")).split(" ").slice(0, 3).join(" ");
  log(`go ${goVersion()}, targets ${targets.map((t) => t.name).join(", ")}, runs ${runs}, latencies ${latencies.join("/")} ms; reference: ${gcp.note}; load ${load}`);
  const s3 = await startS3Server();
  const proxy = await startFaultProxy(s3.endpoint);
  for (const [k, v] of Object.entries(s3.env)) process.env[k] = v;
  const viaProxy = createS3Client({ ...clientConfig(s3, proxy.endpoint) }, { metrics: new Metrics(), logger: createLogger({}) });
  const compare = flags.compare ? String(flags.compare) : null;
  if (compare && !existsSync(compare)) die(`--compare ${compare}: no such file`);
  const ctx: Ctx = { bin, compare, gcp: gcp.bin, s3, proxy, viaProxy, scratch: scratchDir(), made: [] };
  log(`local caches in ${ctx.scratch} (${fileSystemOf(ctx.scratch)})`);
  const summaries: TargetSummary[] = [];
  try {
    for (const t of targets) {
      const res = new Results();
      await benchTarget(ctx, t, res);
      const o = { target: t, results: res, latencies, goVersion: goVersion(), reference: gcp.note, runs, refRuns, coldRuns, coldLatency, loadBefore: load, compare };
      report(o);
      summaries.push(summarize(o));
    }
    if (flags["summary-json"]) await Bun.write(String(flags["summary-json"]), JSON.stringify(summaries));
  } finally {
    viaProxy.close();
    await proxy.stop();
    await s3.stop();
  }
}

if (flags.cpus) {
  // Each core count is a whole run of this script under taskset (s3-cores.ts).
  const argv = Bun.argv.slice(2).filter((a, i, all) => !a.startsWith("--cpus") && all[i - 1] !== "--cpus");
  await benchPerCoreCount(Bun.argv[1]!, argv, parseCpus(String(flags.cpus)));
} else {
  await main();
}
