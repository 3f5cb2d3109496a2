#!/usr/bin/env bun
// A plugin's own cost, without the go command: the requests of one real
// warm `go build std` are recorded once, then replayed to each plugin as
// its stdin, all at once; each run is one plugin process answering them
// all, timed from its start to its exit, with its own CPU (rusage).
// local.ts measures what a user sees (the go command's wall time, with a
// plugin's round trips on its critical path); this measures what the
// plugin itself spends, with far less noise: the figure to watch when
// changing the get path.
//
//   npx bun scripts/bench/replay.ts [--runs 21] [--cost-log 100000] [--compare BIN] [--rebuild] [--keep]
//
// Variants, each on its own copy of one seed cache (the go command's own
// entries, every get a hit):
//   gostash         dist/gostash, no cost book (a cache gostash never filled)
//   gostash+book    dist/gostash, a cost book of --cost-log records (the
//                   book's bound is about 100,000: a machine gostash has
//                   served for weeks), indexed by one untimed replay first
//   compare         --compare BIN on the same two caches (compare, compare+book)
//   go-cacher       the Go reference plugin (bradfitz/go-tool-cache), on the
//                   seed converted to its layout (as local.ts does)
//   floor           scripts/bench/floor-plugin: reads each entry and answers
// The recorded session: `go build std` with GOCACHEPROG a shell pipeline
// that tees its stdin into a file (its gets and its close).

import { chmodSync, cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cpus, loadavg } from "node:os";
import {
  benchDir,
  convertToGoCacher,
  die,
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
  samplesTable,
  setKeepTemps,
  tempDir,
  writeCostLog,
  type Variant,
} from "./lib.ts";

const flags = parseFlags(Bun.argv.slice(2), { runs: "21", "cost-log": "100000", compare: "", rebuild: false, keep: false });
const runs = intFlag(flags, "runs");
const costLog = intFlag(flags, "cost-log");
setKeepTemps(flags.keep === true);
const gostash = ensureGostash({ rebuild: flags.rebuild === true });
const tools = ensureTools();
const alt = flags.compare ? String(flags.compare) : null;
const gover = goVersion();

// -------------------------------------------------------------- seed and session

const seed = join(benchDir, `seed-${gover}-cgo0`); // local.ts's seed: the same entries
mkdirSync(seed, { recursive: true });
const work = tempDir("replay");
await mustRun(["go", "build", "std"], { env: goEnv(seed), cwd: work });

const session = join(work, "session.in");
const recorder = join(work, "record.sh");
const recordCache = join(work, "record-cache");
cpSync(seed, recordCache, { recursive: true });
writeFileSync(recorder, `#!/bin/sh\ntee ${JSON.stringify(session)} | ${JSON.stringify(gostash)} "$@"\n`);
chmodSync(recorder, 0o755);
await mustRun(["go", "build", "std"], { env: goEnv(recordCache, { GOCACHEPROG: recorder }), cwd: work });
const text = readFileSync(session, "latin1");
const gets = text.match(/"Command":"get"/g)?.length ?? 0;
if (!text.includes(`"Command":"close"`) || gets === 0) die(`recording a warm go build std gave no session (${gets} gets, no close?)`);
log(`recorded session: ${gets} gets, ${text.length} bytes`);
// As the go command does, close is sent only once every get is answered
// (go-cacher, for one, stops at close without finishing what is in flight).
const closeAt = text.lastIndexOf("{", text.indexOf(`"Command":"close"`));
const getsPart = text.slice(0, closeAt);
const closePart = text.slice(closeAt);

// -------------------------------------------------------------- variants

interface Setup {
  name: string;
  cmd: string[];
  dir: string;
}

const setups: Setup[] = [];
function addCache(name: string, bin: string, book: boolean): void {
  const dir = join(work, name);
  cpSync(seed, dir, { recursive: true });
  if (book) writeCostLog(dir, costLog);
  setups.push({ name, cmd: [bin], dir });
}
addCache("gostash", gostash, false);
addCache("gostash+book", gostash, true);
if (alt) {
  addCache("compare", alt, false);
  addCache("compare+book", alt, true);
}
const ref = referencePlugin(tools);
if (ref?.name === "go-cacher") {
  const dir = join(work, "go-cacher");
  log(`converted ${convertToGoCacher(seed, dir)} seed entries to go-cacher's layout`);
  setups.push({ name: "go-cacher", cmd: [ref.bin, "--cache-dir", dir], dir: join(work, "go-cacher-gocache") });
} else if (ref) log(`${ref.name} is not replayed: its cache would need a cold fill (local.ts does that)`);
if (tools.floorPlugin) addCache("floor", tools.floorPlugin, false);

async function replay(s: Setup): Promise<{ ms: number; cpuMs: number }> {
  const t0 = performance.now();
  const p = Bun.spawn(s.cmd, { env: goEnv(s.dir), stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const errText = new Response(p.stderr).text();
  p.stdin.write(getsPart);
  await p.stdin.flush();
  const reader = p.stdout.getReader();
  const decoder = new TextDecoder();
  let out = "";
  let lines = 0;
  while (lines < gets + 1) {
    // The capability line, then an answer for each get.
    const { value, done } = await reader.read();
    if (done) break;
    const chunk = decoder.decode(value, { stream: true });
    out += chunk;
    lines += chunk.split("\n").length - 1;
  }
  p.stdin.write(closePart);
  p.stdin.end();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += decoder.decode(value, { stream: true });
  }
  const code = await p.exited;
  const ms = performance.now() - t0;
  if (code !== 0) die(`${s.name}: exited ${code}\n${(await errText).slice(-2000)}`);
  const hits = out.match(/"DiskPath"/g)?.length ?? 0;
  if (hits !== gets) die(`${s.name}: ${hits} hits of ${gets} gets: the cache is not the seed's`);
  const ru = p.resourceUsage();
  return { ms, cpuMs: ru ? Number(ru.cpuTime.total) / 1000 : NaN };
}

// One untimed replay each: the book gets its index, the page cache its files.
for (const s of setups) await replay(s);
const variants: Variant[] = setups.map((s) => ({ name: s.name, once: () => replay(s) }));
const samples = await interleave(variants, runs, "replay: ");

// -------------------------------------------------------------- report

const pairs: [string, string][] = [["gostash+book", "gostash"]];
if (ref?.name === "go-cacher") pairs.push(["gostash", "go-cacher"], ["gostash+book", "go-cacher"]);
if (tools.floorPlugin) pairs.push(["gostash", "floor"]);
if (alt) pairs.push(["compare", "gostash"], ["compare+book", "gostash+book"], ["compare+book", "compare"]);
const out = [
  `# a warm go build std's ${gets} gets replayed to each plugin (one process per run, stdin from a file)`,
  `go: ${gover}; ${cpus().length} cores; load average at end ${loadavg().map((l) => l.toFixed(2)).join(" ")}; cost book: ${costLog} records`,
  ...(alt ? [`compare: ${alt}`] : []),
  `${runs} interleaved runs per variant; time: start to exit; cpu: the plugin process's user+sys (the figure to read)`,
  "",
  samplesTable(samples),
  "",
  ratioTable(samples, pairs),
];
console.log(out.join("\n"));
