#!/usr/bin/env bun
// Reverse-proxy benchmark: downloads of a file that is already cached,
// over HTTPS (the proxy terminates CONNECT with its own certificate), by a
// Go client with kept-alive connections (revproxy-load/), through
//   direct            no proxy: straight from the local origin (the floor)
//   gostash           gostash serve --revproxy, the file on its local disk
//   go-cache-plugin   v0.1.1's serve --revproxy, the file on its local disk
//                     (needs root: see test/revproxy/proxies.ts)
// Two workloads, interleaved round by round: `small` (a 4 KiB file, --n
// requests by --c workers: latency and requests per second) and `large`
// (a --mib MiB file, downloaded --large-n times: throughput). Each proxy's
// X-Cache is checked to say hit on every timed request.
//
// The origin runs in this process (the large file sent from a file, so the
// direct floor is the fastest it can be); the bucket is versitygw (for
// go-cache-plugin behind a TLS front: its uploads need HTTPS).
//
// Then what --revproxy costs everything else on the port (its TCP front
// copies every connection's bytes to the inner server): two gostash
// daemons with the module proxy (upstream: this machine's
// $GOMODCACHE/cache/download as file://, sumdb off), one with --revproxy
// and one without, each asked for /metrics and a cached module zip, the
// same interleaved way.
//
//   npx bun scripts/bench/revproxy.ts [--runs 5] [--n 2000] [--c 8] [--mib 64] [--large-n 4] [--rebuild] [--keep]

import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { startS3Server } from "../../test/helpers/s3server.ts";
import { startOrigin, type Origin } from "../../test/revproxy/origin.ts";
import { goCachePluginUnavailable, startGoCachePlugin, startGostash, startTlsFront, type ProxyUnderTest } from "../../test/revproxy/proxies.ts";
import { benchDir, cleanupTemps, die, ensureGostash, fmtMs, intFlag, log, median, mustRun, parseFlags, root, run, setKeepTemps, table, tempDir } from "./lib.ts";

const flags = parseFlags(Bun.argv.slice(2), { runs: "5", n: "2000", c: "8", mib: "64", "large-n": "4", rebuild: false, keep: false });
const runs = intFlag(flags, "runs");
const smallN = intFlag(flags, "n");
const workers = intFlag(flags, "c");
const mib = intFlag(flags, "mib");
const largeN = intFlag(flags, "large-n");
setKeepTemps(flags.keep === true);

interface Load {
  requests: number;
  bytes: number;
  seconds: number;
  p50: number;
  p90: number;
  p99: number;
  xCache: Record<string, number>;
}

interface Variant {
  name: string;
  /** HTTPS_PROXY for the load client ("" for direct). */
  proxy: string;
  roots: string;
  /** X-Cache every timed answer must carry ("" for direct). */
  hit: string;
}

async function buildLoadClient(): Promise<string> {
  const out = join(benchDir, "bin", "revproxy-load");
  mkdirSync(join(benchDir, "bin"), { recursive: true });
  await mustRun(["go", "build", "-o", out, "."], { cwd: join(import.meta.dir, "revproxy-load"), env: { ...(process.env as Record<string, string>), GOFLAGS: "-mod=mod", GOTOOLCHAIN: "local" } });
  return out;
}

async function load(client: string, v: Variant, url: string, n: number, c: number): Promise<Load> {
  const r = await run([client, `-n=${n}`, `-c=${c}`, url], { env: { ...(process.env as Record<string, string>), HTTPS_PROXY: v.proxy, HTTP_PROXY: "", SSL_CERT_FILE: v.roots } });
  if (r.code !== 0) die(`${v.name}: load client failed: ${r.stderr}`);
  const res = JSON.parse(r.stdout) as Load;
  const misses = Object.entries(res.xCache).filter(([k]) => k !== v.hit);
  if (misses.length) die(`${v.name}: answers not served as "${v.hit}": ${JSON.stringify(res.xCache)}`);
  return res;
}

async function startVariants(origin: Origin, work: string): Promise<{ variants: Variant[]; stop: () => Promise<void> }> {
  const s3 = await startS3Server();
  const proxies: ProxyUnderTest[] = [];
  const dir = (name: string) => {
    const d = join(work, name);
    mkdirSync(d, { recursive: true });
    return d;
  };
  proxies.push(await startGostash({ origin, s3, cacheDir: dir("gostash"), work, prefix: "g", hosts: `localhost:${origin.httpsPort}` }));
  const why = goCachePluginUnavailable();
  let front: { endpoint: string; stop(): void } | null = null;
  if (why) log(`go-cache-plugin left out: ${why}`);
  else {
    front = startTlsFront(s3.endpoint, origin.certPem, origin.keyPem);
    proxies.push(await startGoCachePlugin({ origin, s3, cacheDir: dir("gcp"), work, prefix: "r", hosts: "localhost", env: { GOCACHE_S3_ENDPOINT_URL: front.endpoint } }));
  }
  const variants: Variant[] = [
    { name: "direct", proxy: "", roots: origin.certFile, hit: "" },
    ...proxies.map((p) => ({ name: p.name, proxy: p.proxyURL, roots: p.roots, hit: "hit, local" })),
  ];
  return {
    variants,
    async stop() {
      for (const p of proxies) await p.stop();
      front?.stop();
      await s3.stop();
    },
  };
}

/** A cached module zip of 1-8 MiB from this machine's module cache, as a /mod path. */
async function someModuleZip(modcache: string): Promise<string> {
  const r = await run(["find", modcache, "-name", "*.zip", "-size", "+1M", "-size", "-8M"]);
  const zip = r.stdout.split("\n").find(Boolean);
  if (!zip) die(`no module zip of 1-8 MiB in ${modcache}`);
  return zip.slice(modcache.length);
}

/** /metrics and a module zip from two daemons, one with --revproxy: what the front costs. */
async function frontCost(client: string, work: string): Promise<string> {
  const modcache = `${(await mustRun(["go", "env", "GOMODCACHE"])).stdout.trim()}/cache/download`;
  const zip = await someModuleZip(modcache);
  const start = async (name: string, extra: string[]) => {
    const dir = join(work, name);
    mkdirSync(dir, { recursive: true });
    const { startDaemon } = await import("../../test/daemon/helpers.ts");
    const d = await startDaemon(["--plugin=0", "--http=127.0.0.1:0", `--cache-dir=${dir}`, "--modproxy", `--upstream=file://${modcache}`, "--sumdb=off", ...extra], { HTTP_PROXY: "", HTTPS_PROXY: "" });
    return { name, url: d.http!, stop: () => d.stop() };
  };
  const daemons = [await start("without --revproxy", []), await start("with --revproxy", ["--revproxy=example.invalid"])];
  const none: Variant = { name: "", proxy: "", roots: "", hit: "" };
  try {
    for (const d of daemons) await load(client, none, `${d.url}/mod${zip}`, 2, 1);
    const metrics: Record<string, Load[]> = {};
    const zips: Record<string, Load[]> = {};
    for (let r = 0; r < runs; r++) {
      const order = r % 2 ? [...daemons].reverse() : daemons;
      for (const d of order) {
        (metrics[d.name] ??= []).push(await load(client, none, `${d.url}/metrics`, smallN, workers));
        (zips[d.name] ??= []).push(await load(client, none, `${d.url}/mod${zip}`, Math.max(20, smallN / 20), workers));
      }
    }
    const med = (xs: Load[], f: (l: Load) => number) => median(xs.map(f));
    const rps = (l: Load) => l.requests / l.seconds;
    const mbps = (l: Load) => l.bytes / l.seconds / (1 << 20);
    const base = daemons[0]!.name;
    const rows = daemons.map((d) => [
      d.name,
      `${med(metrics[d.name]!, rps).toFixed(0)}/s`,
      fmtMs(med(metrics[d.name]!, (x) => x.p50)),
      `${med(zips[d.name]!, rps).toFixed(0)}/s`,
      `${med(zips[d.name]!, mbps).toFixed(0)} MiB/s`,
      `${(med(metrics[d.name]!, rps) / med(metrics[base]!, rps)).toFixed(2)}x / ${(med(zips[d.name]!, mbps) / med(zips[base]!, mbps)).toFixed(2)}x`,
    ]);
    return `what --revproxy costs the port's other endpoints (${smallN} x /metrics, c=${workers}; module zip ${zip})\n${table(["daemon", "/metrics req/s", "p50", "zip req/s", "zip MiB/s", "vs without"], rows)}`;
  } finally {
    for (const d of daemons) await d.stop();
  }
}

function loadavg(): string {
  return Bun.spawnSync(["cat", "/proc/loadavg"]).stdout.toString().trim();
}

async function main(): Promise<void> {
  ensureGostash({ rebuild: flags.rebuild === true });
  const tools = Bun.spawnSync(["sh", join(root, "scripts/tools/go-cache-plugin.sh")], { stderr: "inherit" });
  if (tools.exitCode !== 0) die("scripts/tools/go-cache-plugin.sh failed");
  const client = await buildLoadClient();
  const work = tempDir("revproxy");
  // HTTPS on 443 when go-cache-plugin runs (its targets must be there), else any port.
  const origin = startOrigin(goCachePluginUnavailable() ? {} : { httpsPort: 443 });
  const { variants, stop } = await startVariants(origin, work);
  const small = `${origin.https}/size/4096/bench-small`;
  const large = `${origin.https}/file/${mib}/bench-large`;
  try {
    // Fill every cache: two fetches each, the second must be a hit.
    for (const v of variants) {
      for (const url of [small, large]) {
        await load(client, { ...v, hit: v.hit ? "fetch, cached" : "" }, url, 1, 1);
        await Bun.sleep(200);
        await load(client, v, url, 1, 1);
      }
    }
    log(`load ${loadavg()}; ${runs} rounds; small: ${smallN} requests by ${workers} workers; large: ${largeN} x ${mib} MiB`);
    const small_: Record<string, Load[]> = {};
    const large_: Record<string, Load[]> = {};
    for (let r = 0; r < runs; r++) {
      const order = variants.map((_, i) => variants[(i + r) % variants.length]!);
      if (r % 2) order.reverse();
      for (const v of order) {
        (small_[v.name] ??= []).push(await load(client, v, small, smallN, workers));
        (large_[v.name] ??= []).push(await load(client, v, large, largeN, 1));
      }
      log(`round ${r + 1}/${runs} done (load ${loadavg()})`);
    }
    report(variants, small_, large_);
    console.log(`\n${await frontCost(client, work)}`);
  } finally {
    await stop();
    origin.stop();
    cleanupTemps();
  }
}

function report(variants: Variant[], small: Record<string, Load[]>, large: Record<string, Load[]>): void {
  const med = (xs: Load[], f: (l: Load) => number) => median(xs.map(f));
  const rps = (l: Load) => l.requests / l.seconds;
  const mbps = (l: Load) => l.bytes / l.seconds / (1 << 20);
  const direct = { rps: med(small.direct!, rps), mbps: med(large.direct!, mbps) };
  const rows = variants.map((v) => {
    const s = small[v.name]!;
    const l = large[v.name]!;
    return [
      v.name,
      `${med(s, rps).toFixed(0)}/s`,
      fmtMs(med(s, (x) => x.p50)),
      fmtMs(med(s, (x) => x.p99)),
      `${med(l, mbps).toFixed(0)} MiB/s`,
      `${(med(s, rps) / direct.rps).toFixed(2)}x / ${(med(l, mbps) / direct.mbps).toFixed(2)}x`,
    ];
  });
  console.log(`reverse proxy, cached HTTPS downloads (medians of ${runs} rounds; load at the end ${loadavg()})`);
  console.log(table(["variant", `4 KiB req/s (c=${workers})`, "p50", "p99", `${mib} MiB throughput`, "vs direct (req/s, MiB/s)"], rows));
}

if (!existsSync(join(root, "node_modules"))) die("run npm install first");
await main();
