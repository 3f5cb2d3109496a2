#!/usr/bin/env bun
// Soak test: one compiled daemon under a steady, bounded load, watched for
// leaks.
//
//   bun scripts/soak.ts [--duration 3m] [--builds 2] [--no-s3] [--bin dist/gostash]
//
// Starts `gostash serve --plugin <unix socket> --http 127.0.0.1:0
// --modproxy` with a loopback HTTP upstream made from the module-proxy test
// fixtures (test/modproxy/helpers.ts), the test checksum database
// (test/fixtures/sumdb) behind --sumdb, and the S3 tier on versitygw when
// .tools/bin/versitygw exists (--no-s3 to leave it out). Then, until the
// duration is over, --builds workers each loop over:
//   - a small generated module: every other round its sources change (new
//     action IDs: misses and puts), the rounds between run `go clean -cache`
//     first and rebuild it unchanged (hits; go clean never reaches the
//     plugin, so they come from the daemon);
//   - go build through `gostash connect`, and the binary's output checked;
//   - go test ./... through `gostash connect` (its result cached every other round);
//   - go mod download -json of the fixture modules through the daemon's
//     proxy and checksum database, into a fresh GOMODCACHE.
// Meanwhile the daemon's RSS (VmRSS) and open file descriptors are sampled
// every second from /proc/<pid>. At the end it prints the figures below and
// exits 1 on any failed or wrong build, a daemon that does not stop cleanly,
// or descriptor growth beyond --fd-tolerance (measured from the end of every
// worker's first round, once pools and caches are warm, to the end, once
// every go command has gone):
//
//   soak: rounds 24 (builds 24 ok, tests 24 ok, mod downloads 24 ok), failures 0
//   soak: requests served: plugin 5120 (gets 3400, puts 1720), http 410
//   soak: errors: builds 0, daemon 0
//   soak: rss peak 141.2 MiB, final 118.0 MiB
//   soak: fds start 21, warm 25, end 25 (tolerance 8)
//   soak: PASS
//
// It is gentle on a 2-core machine: two workers by default, tiny modules,
// one go command at a time per worker. Everything lives in a temporary
// directory removed at the end (--keep to look at it).

import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const root = resolve(import.meta.dir, "..");

const { values: args } = parseArgs({
  options: {
    duration: { type: "string", default: "3m" },
    builds: { type: "string", default: "2" },
    bin: { type: "string", default: join(root, "dist", "gostash") },
    s3: { type: "boolean", default: true },
    "no-s3": { type: "boolean", default: false },
    "fd-tolerance": { type: "string", default: "8" },
    keep: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  console.log(
    "usage: bun scripts/soak.ts [--duration 3m] [--builds 2] [--no-s3] [--fd-tolerance 8] [--bin dist/gostash] [--keep]",
  );
  process.exit(0);
}

const { parseDuration } = await import("../src/config/units.ts");
const { formatBytes } = await import("../src/util/bytes.ts");
const durationMs = parseDuration(args.duration!, "--duration");
const workers = Number(args.builds);
const fdTolerance = Number(args["fd-tolerance"]);
if (!Number.isInteger(workers) || workers < 1) throw new Error(`--builds must be a positive integer, got ${args.builds}`);
if (!Number.isInteger(fdTolerance) || fdTolerance < 0) throw new Error(`--fd-tolerance must be a non-negative integer`);
const bin = resolve(args.bin!);
if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`npx bun scripts/build.ts\` first (or pass --bin)`);
// The test helpers read the binary's path from the environment when loaded.
process.env.GOSTASH_BIN = bin;

const { TOOLS } = await import("../test/helpers/env.ts");
const { startDaemon } = await import("../test/daemon/helpers.ts");
const { goEnv, go } = await import("../test/helpers/go.ts");
const { startSumdb, startUpstream, writeTestModules } = await import("../test/modproxy/helpers.ts");
const { parsePrometheus, value } = await import("../test/http/prom-parse.ts");

const say = (line: string) => process.stdout.write(`soak: ${line}\n`);
const GO_TIMEOUT = 300_000;

const work = mkdtempSync(join(tmpdir(), "gostash-soak-"));
const cleanups: (() => unknown)[] = [];
let exitCode = 1;
try {
  exitCode = await soak();
} catch (err) {
  say(`error: ${(err as Error)?.stack ?? err}`);
  exitCode = 1;
} finally {
  for (const f of cleanups.reverse()) {
    try {
      await f();
    } catch {}
  }
  if (args.keep) say(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
process.exit(exitCode);

interface Tally {
  rounds: number;
  builds: number;
  tests: number;
  downloads: number;
  failures: string[];
}

async function soak(): Promise<number> {
  // ---- the daemon and what it proxies -------------------------------------
  const upDir = join(work, "upstream");
  writeTestModules(upDir);
  const up = startUpstream(upDir);
  cleanups.push(() => up.stop());
  const db = await startSumdb(upDir);
  cleanups.push(() => db.stop());

  const versitygw = join(TOOLS, "bin", "versitygw");
  const useS3 = args.s3 && !args["no-s3"] && existsSync(versitygw);
  let s3env: Record<string, string> = {};
  if (useS3) {
    const { startS3Server } = await import("../test/helpers/s3server.ts");
    const s3 = await startS3Server();
    cleanups.push(() => s3.stop());
    s3env = s3.env;
  }
  const d = await startDaemon(
    [
      `--plugin=${join(work, "gostash.sock")}`,
      "--http=127.0.0.1:0",
      `--cache-dir=${join(work, "daemon-cache")}`,
      "--modproxy",
      `--upstream=${up.url}`,
      `--sumdb=${db.name}=${db.url}`,
      "--metrics",
    ],
    s3env,
  );
  cleanups.push(async () => {
    if (d.proc.exitCode === null) await d.stop("SIGKILL");
  });
  const pid = d.proc.pid;
  say(`daemon pid ${pid}: plugin ${d.plugin}, http ${d.http}${useS3 ? ", S3 tier on versitygw" : ", no S3 tier"}; ${workers} workers for ${args.duration}`);

  // ---- sampling -------------------------------------------------------------
  const fds = () => readdirSync(`/proc/${pid}/fd`).length;
  const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024;
  const fdStart = fds();
  let rssPeak = rss();
  let fdPeak = fdStart;
  const sampler = setInterval(() => {
    try {
      rssPeak = Math.max(rssPeak, rss());
      fdPeak = Math.max(fdPeak, fds());
    } catch {}
  }, 1000);
  cleanups.push(() => clearInterval(sampler));

  // ---- the load ---------------------------------------------------------------
  const deadline = Date.now() + durationMs;
  const tally: Tally = { rounds: 0, builds: 0, tests: 0, downloads: 0, failures: [] };
  let warmFds = -1;
  let warmWorkers = 0;
  const warm = () => {
    if (++warmWorkers === workers) warmFds = fds();
  };
  const proxy = `${d.http}/mod`;
  await Promise.all(Array.from({ length: workers }, (_, w) => worker(w, d.plugin, proxy, db, deadline, tally, warm)));

  // ---- the end: every go command has gone ---------------------------------------
  const metricsText = async () => (await fetch(`${d.http}/metrics`)).text();
  for (let i = 0; i < 100 && (value(parsePrometheus(await metricsText()), "gostash_connections") ?? 0) > 0; i++) await Bun.sleep(100);
  const fams = parsePrometheus(await metricsText());
  const m = (name: string, labels: Record<string, string> = {}) => value(fams, name, labels) ?? 0;
  clearInterval(sampler);
  const fdEnd = fds();
  const rssFinal = rss();
  // The peaks are over every sample, the final one included (the sampler
  // runs once a second and may have last looked before memory grew).
  rssPeak = Math.max(rssPeak, rssFinal);
  fdPeak = Math.max(fdPeak, fdEnd);
  if (warmFds < 0) warmFds = fdStart; // no worker finished a round

  const gets = m("gostash_gets_total");
  const puts = m("gostash_puts_total");
  const hits = m("gostash_hits_total", { tier: "local" }) + m("gostash_hits_total", { tier: "remote" });
  const http = m("gostash_modproxy_requests_total") + m("gostash_sumdb_requests_total");
  const errorCounters = [
    "gostash_errors_total",
    "gostash_connection_errors_total",
    "gostash_connections_aborted_total",
    "gostash_modproxy_errors_total",
    "gostash_sumdb_errors_total",
    "gostash_remote_errors_total",
    "gostash_upload_errors_total",
  ].map((name) => [name, m(name)] as const);
  const daemonErrors = errorCounters.reduce((sum, [, v]) => sum + v, 0);

  const stopCode = await d.stop("SIGTERM", 60_000);
  if (stopCode !== 0) tally.failures.push(`the daemon exited ${stopCode} on SIGTERM:\n${d.stderr().slice(-2000)}`);

  const fdGrowth = fdEnd - warmFds;
  say(
    `rounds ${tally.rounds} (builds ${tally.builds} ok, tests ${tally.tests} ok, mod downloads ${tally.downloads} ok), failures ${tally.failures.length}`,
  );
  say(`requests served: plugin ${gets + puts} (gets ${gets}, hits ${hits}, puts ${puts}), http ${http}`);
  if (useS3) say(`s3: uploads ${m("gostash_uploads_total")}, dropped ${m("gostash_upload_drops_total")}`);
  say(`errors: builds ${tally.failures.length}, daemon ${daemonErrors}`);
  if (daemonErrors > 0) {
    say(`daemon error counters: ${errorCounters.filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(", ")}`);
    say(`daemon log tail:\n${d.stderr().slice(-3000)}`);
  }
  say(`rss peak ${formatBytes(rssPeak)}, final ${formatBytes(rssFinal)}`);
  say(`fds start ${fdStart}, warm ${warmFds}, peak ${fdPeak}, end ${fdEnd} (tolerance ${fdTolerance})`);
  for (const f of tally.failures.slice(0, 5)) say(`FAILED: ${f}`);
  const ok = tally.failures.length === 0 && tally.rounds > 0 && fdGrowth <= fdTolerance;
  if (fdGrowth > fdTolerance) say(`FAILED: ${fdGrowth} more descriptors open at the end than after warm-up`);
  if (tally.rounds === 0) say("FAILED: no round finished");
  say(ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

/** One worker's rounds until the deadline. */
async function worker(
  w: number,
  plugin: string,
  proxy: string,
  db: { name: string; vkey: string },
  deadline: number,
  tally: Tally,
  warm: () => void,
): Promise<void> {
  const dir = join(work, `w${w}`);
  const mod = join(dir, "mod");
  writeModule(mod, w, "v0");
  const env = goEnv({ gocache: join(dir, "gocache"), prog: `${bin} connect ${plugin}`, home: join(dir, "home") });
  let version = "v0";
  for (let round = 0; Date.now() < deadline; round++) {
    const fail = (what: string, r: { code: number; stdout: string; stderr: string }) =>
      tally.failures.push(`worker ${w} round ${round}: ${what} (exit ${r.code}):\n${(r.stdout + r.stderr).slice(-1500)}`);
    if (round % 2 === 0) {
      version = `v${round}`;
      writeModule(mod, w, version);
    } else {
      const c = await go(["clean", "-cache"], mod, env, GO_TIMEOUT);
      if (c.code !== 0) fail("go clean -cache", c);
    }
    const b = await go(["build", "-o", "app.bin", "./cmd/app"], mod, env, GO_TIMEOUT);
    if (b.code !== 0) fail("go build", b);
    else {
      const out = Bun.spawnSync([join(mod, "app.bin")]).stdout.toString();
      const want = `soak ${w} ${version}: sum 55, hello GOPHER\n`;
      if (out !== want) fail(`app printed ${JSON.stringify(out)}, want ${JSON.stringify(want)}`, b);
      else tally.builds++;
    }
    const t = await go(["test", "./..."], mod, env, GO_TIMEOUT);
    if (t.code !== 0 || !/^ok\s+example\.com\/soak\d+\/calc\s/m.test(t.stdout)) fail("go test", t);
    else tally.tests++;

    // Modules through the daemon's proxy and checksum database, into a fresh module cache.
    const modcache = join(dir, `modcache-${round}`);
    const menv = goEnv({
      gocache: join(dir, "gocache"),
      home: join(dir, "home"),
      extra: {
        GOMODCACHE: modcache,
        GOPROXY: proxy,
        GOSUMDB: `${db.vkey} ${proxy}/sumdb/${db.name}`,
        GONOSUMDB: "",
        GOPRIVATE: "",
        GOFLAGS: "-mod=mod",
      },
    });
    const mods = ["example.com/lib@v1.1.0", "example.com/dep@v1.0.0", "example.com/Upper/Case@v1.0.0"];
    const dl = await go(["mod", "download", "-json", ...mods], dir, menv, GO_TIMEOUT);
    const infos = dl.code === 0 ? dl.stdout.split(/\n(?=\{)/).map((s) => JSON.parse(s) as { Path: string; Zip?: string; Error?: string }) : [];
    if (dl.code !== 0 || infos.length !== mods.length || infos.some((i) => i.Error || !i.Zip || !existsSync(i.Zip))) fail("go mod download", dl);
    else tally.downloads++;
    await go(["clean", "-modcache"], dir, menv, GO_TIMEOUT);
    rmSync(modcache, { recursive: true, force: true });

    tally.rounds++;
    if (round === 0) warm();
  }
}

/** A small module: a changing constant, a package with a test, a command using both and the standard library. */
function writeModule(dir: string, w: number, version: string): void {
  const files: Record<string, string> = {
    "go.mod": `module example.com/soak${w}\n\ngo 1.22\n`,
    "gen/gen.go": `package gen\n\n// Version changes every other round.\nconst Version = "${version}"\n`,
    "calc/calc.go":
      'package calc\n\nimport "strings"\n\n// Sum adds 1..n.\nfunc Sum(n int) int {\n\ts := 0\n\tfor i := 1; i <= n; i++ {\n\t\ts += i\n\t}\n\treturn s\n}\n\n// Shout upper-cases a greeting.\nfunc Shout(s string) string { return "hello " + strings.ToUpper(s) }\n',
    "calc/calc_test.go":
      'package calc\n\nimport "testing"\n\nfunc TestSum(t *testing.T) {\n\tif Sum(10) != 55 {\n\t\tt.Fatal(Sum(10))\n\t}\n}\n\nfunc TestShout(t *testing.T) {\n\tif Shout("go") != "hello GO" {\n\t\tt.Fatal()\n\t}\n}\n',
    "cmd/app/main.go": `package main\n\nimport (\n\t"fmt"\n\n\t"example.com/soak${w}/calc"\n\t"example.com/soak${w}/gen"\n)\n\nfunc main() {\n\tfmt.Printf("soak %d %s: sum %d, %s\\n", ${w}, gen.Version, calc.Sum(10), calc.Shout("gopher"))\n}\n`,
  };
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
}
