#!/usr/bin/env bun
// Module proxy benchmark: `go mod download` of a real module graph through
//   direct          GOPROXY=<local upstream> (the graph fetched straight from the upstream)
//   floor           GOPROXY=file://<seeded cache> (no proxy at all: the floor)
//   gostash-cold    gostash serve --modproxy, empty cache, upstream = local upstream
//   gostash-warm    the same daemon with everything cached
//   goproxy-cold/-warm   goproxy.cn's goproxy (go install, pinned), if it can be installed
// and cached-zip requests per second under concurrent load (gostash vs goproxy).
//
// The graph is seeded once from the Go module proxy (the go command's
// default GOPROXY) with `go mod download` of a real multi-module project
// into .bench/modproxy-seed-*/ and kept. During the runs it is served by a
// local upstream (in this process) that adds --latency ms to every request,
// like a distant proxy. Each timed `go mod download` starts with an empty
// GOMODCACHE; GOSUMDB=off (the project's go.sum is checked all the same).
//
//   npx bun scripts/bench/modproxy.ts [--runs 3] [--latency 20] [--project M@V]
//        [--concurrency 32] [--seconds 5] [--compare BIN] [--rebuild] [--keep]
//
// --compare BIN runs another gostash binary (e.g. the previous build) as
// compare-cold/compare-warm beside gostash-cold/-warm, in every section.

import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  benchDir,
  die,
  ensureGostash,
  fmtBytes,
  fmtMs,
  freePort,
  interleave,
  intFlag,
  log,
  mustRun,
  parseFlags,
  ratioTable,
  root,
  run,
  samplesTable,
  setKeepTemps,
  table,
  tempDir,
  type Variant,
  waitHttp,
} from "./lib.ts";

const GOPROXY_VERSION = "v0.18.0"; // github.com/goproxy/goproxy, pinned

const flags = parseFlags(Bun.argv.slice(2), {
  runs: "3",
  latency: "20",
  project: "github.com/versity/versitygw@v1.8.0",
  concurrency: "32",
  seconds: "5",
  compare: "",
  rebuild: false,
  keep: false,
});
setKeepTemps(flags.keep === true);
const runs = intFlag(flags, "runs");
const latencyMs = Number(flags.latency);
const concurrency = intFlag(flags, "concurrency");
const seconds = intFlag(flags, "seconds");
const project = String(flags.project);
const gostash = ensureGostash({ rebuild: flags.rebuild === true });
/** --compare BIN: another gostash build measured alongside. */
const alt = flags.compare ? String(flags.compare) : null;

function baseEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of ["PATH", "HOME", "TMPDIR", "LANG", "USER"]) if (process.env[k] !== undefined) env[k] = process.env[k]!;
  return Object.assign(env, { GOENV: "off", GOTOOLCHAIN: "local", GOTELEMETRY: "off", GOFLAGS: "-mod=mod", CGO_ENABLED: "0" }, extra);
}

function rmTree(dir: string): void {
  if (!existsSync(dir)) return;
  // The module cache is read-only.
  Bun.spawnSync(["chmod", "-R", "u+w", dir]);
  rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------- seed (once)

const seedDir = join(benchDir, `modproxy-seed-${project.replace(/[^A-Za-z0-9.@-]+/g, "_")}`);
const seedCache = join(seedDir, "gomodcache", "cache", "download");
const mainDir = join(seedDir, "main");
if (!existsSync(join(seedDir, "done"))) {
  log(`seeding ${seedDir} from the Go module proxy: go mod download of ${project}'s module graph (once)`);
  mkdirSync(seedDir, { recursive: true });
  const env = baseEnv({ GOMODCACHE: join(seedDir, "gomodcache"), GOPATH: join(seedDir, "gopath"), GOCACHE: join(seedDir, "gocache") });
  delete (env as Record<string, string | undefined>).GOFLAGS;
  const r = await mustRun(["go", "mod", "download", "-json", project], { env, cwd: seedDir });
  const info = JSON.parse(r.stdout) as { GoMod: string; Dir: string };
  mkdirSync(mainDir, { recursive: true });
  cpSync(info.GoMod, join(mainDir, "go.mod"));
  chmodSync(join(mainDir, "go.mod"), 0o644);
  if (existsSync(join(info.Dir, "go.sum"))) {
    cpSync(join(info.Dir, "go.sum"), join(mainDir, "go.sum"));
    chmodSync(join(mainDir, "go.sum"), 0o644);
  }
  // The project's go.mod as the main module: `go mod download` fetches every module it requires.
  await mustRun(["go", "mod", "download"], { env: { ...env, GOFLAGS: "-mod=mod" }, cwd: mainDir });
  writeFileSync(join(seedDir, "done"), new Date().toISOString());
}
const zips: string[] = [];
/** Every .info, .mod and .zip of the graph: what a cold `go mod download` asks for. */
const files: string[] = [];
let graphBytes = 0;
(function walk(dir: string, rel: string) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) walk(join(dir, e.name), rel ? `${rel}/${e.name}` : e.name);
    else if (/\.(info|mod|zip)$/.test(e.name) && !rel.startsWith("sumdb")) {
      files.push(`${rel}/${e.name}`);
      if (e.name.endsWith(".zip")) {
        zips.push(`${rel}/${e.name}`);
        graphBytes += statSync(join(dir, e.name)).size;
      }
    }
  }
})(seedCache, "");
if (!zips.length) die(`no module zips in ${seedCache}`);
log(`graph: ${zips.length} module zips, ${fmtBytes(graphBytes)}`);

// ---------------------------------------------------------------- local upstream with latency

let upstreamRequests = 0;
const upstream = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  idleTimeout: 0,
  async fetch(req) {
    upstreamRequests++;
    if (latencyMs > 0) await Bun.sleep(latencyMs);
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path.includes("..")) return new Response("bad\n", { status: 400 });
    const f = join(seedCache, path);
    if (!existsSync(f) || !statSync(f).isFile()) return new Response("not found\n", { status: 404 });
    return new Response(Bun.file(f));
  },
});
const upstreamURL = `http://127.0.0.1:${upstream.port}`;
log(`local upstream ${upstreamURL} (+${latencyMs} ms per request)`);

// ---------------------------------------------------------------- proxies

interface Server {
  url: string;
  proc: Bun.Subprocess;
  stop(): Promise<void>;
}

async function startGostash(cacheDir: string, bin = gostash): Promise<Server> {
  const port = await freePort();
  const proc = Bun.spawn(
    [bin, "serve", "--plugin", join(cacheDir, "plugin.sock"), "--http", `127.0.0.1:${port}`, "--cache-dir", cacheDir, "--modproxy", "--upstream", upstreamURL, "--sumdb", "off"],
    { stdin: "ignore", stdout: "ignore", stderr: "inherit", env: baseEnv({}) },
  );
  await waitHttp(`http://127.0.0.1:${port}/healthz`, proc, "gostash serve");
  return {
    url: `http://127.0.0.1:${port}/mod`,
    proc,
    stop: async () => {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill(9), 10_000);
      await proc.exited;
      clearTimeout(t);
    },
  };
}

const goproxyBin = join(root, ".tools", "bin", "goproxy");
const goproxyRefused = join(root, ".tools", "goproxy.refused");
async function ensureGoproxy(): Promise<string | null> {
  if (existsSync(goproxyBin)) return goproxyBin;
  if (existsSync(goproxyRefused)) {
    log(`goproxy: not installable here (${readFileSync(goproxyRefused, "utf8").trim().split("\n")[0]}); delete ${goproxyRefused} to retry`);
    return null;
  }
  log(`installing goproxy ${GOPROXY_VERSION} into .tools/bin (go install)`);
  const r = await run(["go", "install", `github.com/goproxy/goproxy/cmd/goproxy@${GOPROXY_VERSION}`], {
    env: baseEnv({ GOBIN: join(root, ".tools", "bin"), GOPATH: process.env.GOPATH ?? join(process.env.HOME ?? "/root", "go") }),
  });
  if (r.code === 0 && existsSync(goproxyBin)) return goproxyBin;
  mkdirSync(join(root, ".tools"), { recursive: true });
  writeFileSync(goproxyRefused, r.stderr.trim() + "\n");
  log(`goproxy: go install failed:\n${r.stderr.trim()}`);
  return null;
}

async function startGoproxy(bin: string, cacheDir: string): Promise<Server> {
  const port = await freePort();
  const proc = Bun.spawn([bin, "server", "--address", `127.0.0.1:${port}`, "--cacher-dir", cacheDir, "--temp-dir", cacheDir], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "inherit",
    env: baseEnv({ GOPROXY: upstreamURL, GOSUMDB: "off", GOPATH: join(cacheDir, "gopath") }),
  });
  await waitHttp(`http://127.0.0.1:${port}/`, proc, "goproxy");
  return {
    url: `http://127.0.0.1:${port}`,
    proc,
    stop: async () => {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill(9), 10_000);
      await proc.exited;
      clearTimeout(t);
    },
  };
}

// ---------------------------------------------------------------- go mod download

const work = tempDir("modproxy");
let n = 0;
async function download(goproxy: string): Promise<{ ms: number; cpuMs: number }> {
  const modcache = join(work, `gomodcache-${++n}`);
  const env = baseEnv({
    GOPROXY: goproxy,
    GOSUMDB: "off",
    GOMODCACHE: modcache,
    GOPATH: join(work, "gopath"),
    GOCACHE: join(work, "gocache"),
  });
  const r = await run(["go", "mod", "download"], { env, cwd: mainDir });
  rmTree(modcache);
  if (r.code !== 0) die(`go mod download via ${goproxy} failed:\n${r.stderr.slice(-3000)}`);
  return { ms: r.ms, cpuMs: r.cpuMs };
}

/**
 * A variant that starts a fresh proxy on an empty directory, measures `fn`
 * against it, and throws the proxy and its directory away: a cold cache.
 */
function coldVariant(name: string, start: (dir: string) => Promise<Server>, fn: (url: string) => ReturnType<Variant["once"]>): Variant {
  return {
    name,
    once: async () => {
      const dir = tempDir(`modproxy-${name}`);
      const s = await start(dir);
      try {
        return await fn(s.url);
      } finally {
        await s.stop();
        rmTree(dir);
      }
    },
  };
}

const variants: Variant[] = [
  { name: "direct", once: () => download(upstreamURL) },
  { name: "floor", once: () => download(`file://${seedCache}`) },
];

const warmDir = tempDir("modproxy-gostash-warm");
const gostashWarm = await startGostash(warmDir);
await download(gostashWarm.url); // fills it
variants.push({ name: "gostash-warm", once: () => download(gostashWarm.url) });
variants.push(coldVariant("gostash-cold", startGostash, download));
let compareWarm: Server | null = null;
if (alt) {
  compareWarm = await startGostash(tempDir("modproxy-compare-warm"), alt);
  await download(compareWarm.url);
  variants.push({ name: "compare-warm", once: () => download(compareWarm!.url) });
  variants.push(coldVariant("compare-cold", (dir) => startGostash(dir, alt), download));
}

const goproxy = await ensureGoproxy();
let goproxyWarm: Server | null = null;
if (goproxy) {
  const gpDir = tempDir("modproxy-goproxy-warm");
  goproxyWarm = await startGoproxy(goproxy, gpDir);
  await download(goproxyWarm.url);
  variants.push({ name: "goproxy-warm", once: () => download(goproxyWarm!.url) });
  variants.push(coldVariant("goproxy-cold", (dir) => startGoproxy(goproxy, dir), download));
}

log(`go mod download: ${variants.map((v) => v.name).join(", ")}; ${runs} interleaved rounds`);
const reqBefore = upstreamRequests;
const samples = await interleave(variants, runs, "download ");
const upstreamPerRound = (upstreamRequests - reqBefore) / runs;

// ---------------------------------------------------------------- replay: proxy overhead alone

// `go mod download` spends most of its time unpacking and hashing, which is
// the same for every variant. This replays the requests it makes (every
// .info, .mod and .zip of the graph, 8 at a time, bodies read and dropped)
// to show what the proxy itself costs. The floor reads the files from disk.
async function replay(base: string | null): Promise<{ ms: number }> {
  const t0 = performance.now();
  let i = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (i < files.length) {
        const f = files[i++]!;
        if (base === null) {
          await Bun.file(join(seedCache, f)).arrayBuffer();
          continue;
        }
        const r = await fetch(`${base}/${f}`);
        await r.arrayBuffer();
        if (r.status !== 200) die(`replay: ${base}/${f}: ${r.status}`);
      }
    }),
  );
  return { ms: performance.now() - t0 };
}
const replayVariants: Variant[] = [
  { name: "disk", once: () => replay(null) },
  { name: "direct", once: () => replay(upstreamURL) },
  { name: "gostash-warm", once: () => replay(gostashWarm.url) },
  coldVariant("gostash-cold", startGostash, replay),
  ...(alt && compareWarm ? [{ name: "compare-warm", once: () => replay(compareWarm!.url) }, coldVariant("compare-cold", (dir) => startGostash(dir, alt), replay)] : []),
];
if (goproxy && goproxyWarm) {
  replayVariants.push({ name: "goproxy-warm", once: () => replay(goproxyWarm!.url) });
  replayVariants.push(coldVariant("goproxy-cold", (dir) => startGoproxy(goproxy, dir), replay));
}
log(`replay of ${files.length} requests: ${replayVariants.map((v) => v.name).join(", ")}`);
const replaySamples = await interleave(replayVariants, Math.max(runs, 5), "replay ");

// ---------------------------------------------------------------- cached-zip load

async function load(base: string): Promise<{ rps: number; mbps: number; errors: number }> {
  let count = 0;
  let bytes = 0;
  let errors = 0;
  const until = performance.now() + seconds * 1000;
  let i = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const z = zips[i++ % zips.length]!;
        try {
          const r = await fetch(`${base}/${z}`);
          const b = await r.arrayBuffer();
          if (r.status !== 200) errors++;
          else {
            count++;
            bytes += b.byteLength;
          }
        } catch {
          errors++;
        }
      }
    }),
  );
  return { rps: count / seconds, mbps: bytes / seconds / (1 << 20), errors };
}

const loadRows: string[][] = [];
const loadTargets: [string, string][] = [["gostash-warm", gostashWarm.url]];
if (compareWarm) loadTargets.push(["compare-warm", compareWarm.url]);
if (goproxyWarm) loadTargets.push(["goproxy-warm", goproxyWarm.url]);
const loadResults = new Map<string, { rps: number[]; mbps: number[]; errors: number }>();
for (let r = 0; r < runs; r++) {
  const order = r % 2 ? [...loadTargets].reverse() : loadTargets;
  for (const [name, url] of order) {
    const res = await load(url);
    const acc = loadResults.get(name) ?? { rps: [], mbps: [], errors: 0 };
    acc.rps.push(res.rps);
    acc.mbps.push(res.mbps);
    acc.errors += res.errors;
    loadResults.set(name, acc);
    log(`load round ${r + 1}/${runs}: ${name} ${res.rps.toFixed(0)} req/s, ${res.mbps.toFixed(0)} MiB/s${res.errors ? `, ${res.errors} errors` : ""}`);
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const [name, acc] of loadResults) loadRows.push([name, med(acc.rps).toFixed(0), med(acc.mbps).toFixed(0), String(acc.errors)]);

await gostashWarm.stop();
await compareWarm?.stop();
await goproxyWarm?.stop();
upstream.stop(true);

// ---------------------------------------------------------------- report

const out: string[] = [];
out.push(`# modproxy benchmark — go mod download of ${project}'s module graph`);
out.push(`graph: ${zips.length} modules (zips), ${fmtBytes(graphBytes)}; upstream latency +${latencyMs} ms/request; ${runs} rounds; ${upstreamPerRound.toFixed(0)} upstream requests per round`);
out.push(`goproxy: ${goproxy ? `github.com/goproxy/goproxy ${GOPROXY_VERSION}` : "not measured: `go install github.com/goproxy/goproxy/cmd/goproxy` is refused by the module proxy reachable here"}`);
out.push("");
out.push(samplesTable(samples));
out.push("");
out.push(
  ratioTable(samples, [
    ["gostash-warm", "floor", 1.3],
    ["gostash-cold", "direct", 1.1],
    ["gostash-warm", "goproxy-warm", 1.0],
    ["gostash-cold", "goproxy-cold", 1.0],
    ["gostash-warm", "direct"],
    ["gostash-warm", "compare-warm"],
    ["gostash-cold", "compare-cold"],
  ]),
);
out.push("");
out.push(`replay of the ${files.length} requests of a cold go mod download (8 at a time; disk = reading the files, no HTTP)`);
out.push(samplesTable(replaySamples));
out.push("");
out.push(
  ratioTable(replaySamples, [
    ["gostash-warm", "disk"],
    ["gostash-cold", "direct", 1.1],
    ["gostash-warm", "goproxy-warm", 1.0],
    ["gostash-cold", "goproxy-cold", 1.0],
    ["gostash-warm", "compare-warm"],
    ["gostash-cold", "compare-cold"],
  ]),
);
out.push("");
out.push(`cached zips under load: ${concurrency} concurrent clients, ${seconds} s per round, median of ${runs}`);
out.push(table(["server", "req/s", "MiB/s", "errors"], loadRows));
if (loadResults.has("goproxy-warm")) {
  const g = med(loadResults.get("gostash-warm")!.rps);
  const p = med(loadResults.get("goproxy-warm")!.rps);
  out.push(`gostash / goproxy req/s: ${(g / p).toFixed(2)}x`);
}
if (loadResults.has("compare-warm")) {
  const g = med(loadResults.get("gostash-warm")!.rps);
  const c = med(loadResults.get("compare-warm")!.rps);
  out.push(`gostash / compare req/s: ${(g / c).toFixed(2)}x (compare: ${alt})`);
}
console.log(out.join("\n"));
log(`median gostash-warm ${fmtMs(samples.find((s) => s.name === "gostash-warm")!.ms.sort((a, b) => a - b)[Math.floor(runs / 2)]!)}`);
