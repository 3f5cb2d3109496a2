#!/usr/bin/env bun
// The daemon and its bridge, measured side by side in one run (these
// machines are noisy: variants are interleaved round by round, medians and
// per-round paired ratios are reported):
//
//   1. protocol round trips: sequential get hits (latency p50/p99) and
//      pipelined get hits (64 outstanding; requests per second) through
//      `gostash connect` + daemon vs direct mode (`gostash` on stdin/stdout),
//      and through scripts/bench/floor-bridge + the same daemon: a bridge
//      that only copies bytes (Go), the bound for what the extra process
//      costs, under which no `connect` sending every get through can go;
//      and `connect --no-local-hits`: `connect` answers hits from the
//      daemon's disk itself by default (src/daemon/bridge/local-hits.ts),
//      this variant sends every get through the daemon;
//   2. start-up: spawn -> capability line, one get, close -> stdout EOF
//      (what go waits for) and -> exit, for `gostash connect`
//      (daemon up), direct `gostash`, and `connect` falling back (daemon down);
//   3. warm `go build std`: plain go cache vs direct mode vs daemon (with
//      and without local hits);
//   4. cold `go build std`: plain cold vs through a fresh daemon uploading to
//      a fresh bucket on versitygw (built into .tools/bin on first use),
//      plus the time the daemon then needs to flush on SIGTERM. Also a
//      daemon with --no-toolchain-marks: the Go version is new
//      to each fresh bucket, so connect's hello (src/daemon/hello.ts) lets the
//      default daemon answer misses without a GET each, and this variant
//      shows what that saves. --cold-latency N puts N ms on every request to
//      the bucket (the fault proxy), as a real bucket's round trips would.
//
//   npx bun scripts/bench/daemon.ts [--runs 3] [--rpc 2000] [--startup 15] [--cold-runs 1] [--cold-latency 0] [--skip-cold] [--skip-warm] [--rebuild] [--keep]

import { cpSync, existsSync, mkdirSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { ensureVersitygw } from "./s3-tools.ts";
import {
  benchDir,
  die,
  ensureTools,
  fmtMs,
  gostashBin as BIN,
  goEnv,
  log,
  median,
  pairedRatio as paired,
  parseFlags,
  quantile,
  root,
  setKeepTemps,
  startServe,
  table,
  tempDir,
  type Serve,
} from "./lib.ts";

// ------------------------------------------------------------------ flags

const flags = parseFlags(Bun.argv.slice(2), {
  runs: "3",
  rpc: "2000",
  startup: "15",
  "cold-runs": "1",
  "cold-latency": "0",
  "skip-cold": false,
  "skip-warm": false,
  rebuild: false,
  keep: false,
});
// 0 is allowed here (e.g. --cold-runs 0), unlike lib's intFlag.
const int = (k: string) => {
  const n = Number(flags[k]);
  if (!Number.isInteger(n) || n < 0) die(`--${k} must be a non-negative integer`);
  return n;
};
const RUNS = int("runs");
const RPC = int("rpc");
const STARTUP = int("startup");
const COLD_RUNS = int("cold-runs");
const COLD_LATENCY = int("cold-latency");
setKeepTemps(flags.keep === true);

// ------------------------------------------------------------------ helpers

const tmp = (prefix: string) => tempDir(`daemon-${prefix}`);

async function timed(cmd: string[], env: Record<string, string>, cwd = root): Promise<{ ms: number; code: number; stderr: string }> {
  const t0 = performance.now();
  const p = Bun.spawn(cmd, { env, cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { ms: performance.now() - t0, code, stderr };
}

async function must(cmd: string[], env: Record<string, string>, what: string) {
  const r = await timed(cmd, env);
  if (r.code !== 0) die(`${what}: ${cmd.join(" ")} exited ${r.code}\n${r.stderr.slice(-3000)}`);
  return r;
}

interface Daemon extends Serve {
  sock: string;
}

async function startDaemon(cacheDir: string, env: Record<string, string> = {}): Promise<Daemon> {
  const sock = join(tmp("sock"), "d.sock");
  const serve = await startServe(BIN, [`--plugin=${sock}`, `--cache-dir=${cacheDir}`], { ...process.env, ...env } as Record<string, string>);
  return { ...serve, sock };
}

// ------------------------------------------------------------------ protocol client

const b64 = (hex: string) => Buffer.from(hex, "hex").toString("base64");
const idHex = (i: number, salt: number) => new Bun.CryptoHasher("sha256").update(`${salt}:${i}`).digest("hex");

/** Speaks GOCACHEPROG to a child over its stdin/stdout, like `go` does. */
class PluginClient {
  private waiters = new Map<number, () => void>();
  private buf = "";
  private firstLine!: () => void;
  private stdoutEnded!: (t: number) => void;
  readonly ready: Promise<void>;
  /** performance.now() when the child's stdout closed: what `go` waits for after close. */
  readonly eof: Promise<number>;
  private nextID = 1;
  private constructor(readonly p: Bun.Subprocess<"pipe", "pipe", "pipe">) {
    this.ready = new Promise((r) => (this.firstLine = r));
    this.eof = new Promise((r) => (this.stdoutEnded = r));
    void this.read();
  }
  static start(cmd: string[], env: Record<string, string>): PluginClient {
    return new PluginClient(Bun.spawn(cmd, { env: { ...process.env, ...env } as Record<string, string>, stdin: "pipe", stdout: "pipe", stderr: "pipe" }));
  }
  private async read() {
    const dec = new TextDecoder();
    for await (const chunk of this.p.stdout) {
      this.buf += dec.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = this.buf.indexOf("\n")) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const id = Number(/"ID":(\d+)/.exec(line)?.[1]);
        if (id === 0) this.firstLine();
        const w = this.waiters.get(id);
        if (w) {
          this.waiters.delete(id);
          w();
        }
      }
    }
    this.stdoutEnded(performance.now());
  }
  private send(text: string): Promise<void> {
    const id = Number(/"ID":(\d+)/.exec(text)![1]);
    const done = new Promise<void>((r) => this.waiters.set(id, r));
    this.p.stdin.write(text);
    void this.p.stdin.flush();
    return done;
  }
  get(actionHex: string): Promise<void> {
    return this.send(`{"ID":${this.nextID++},"Command":"get","ActionID":"${b64(actionHex)}"}\n\n`);
  }
  put(actionHex: string, body: Uint8Array): Promise<void> {
    const out = new Bun.CryptoHasher("sha256").update(body).digest("hex");
    return this.send(
      `{"ID":${this.nextID++},"Command":"put","ActionID":"${b64(actionHex)}","OutputID":"${b64(out)}","BodySize":${body.length}}\n\n"${Buffer.from(body).toString("base64")}"\n`,
    );
  }
  async close(): Promise<number> {
    await this.send(`{"ID":${this.nextID++},"Command":"close"}\n\n`);
    this.p.stdin.end();
    return this.p.exited;
  }
}

// ------------------------------------------------------------------ main

if (flags.rebuild === true || !existsSync(BIN)) {
  log("building dist/gostash ...");
  const b = Bun.spawnSync([process.execPath, join(root, "scripts/build.ts")], { cwd: root, stdout: "inherit", stderr: "inherit" });
  if (b.exitCode !== 0) die("build failed");
}
const gover = Bun.spawnSync(["go", "env", "GOVERSION"], { env: goEnv("/nonexistent") }).stdout.toString().trim();
const version = Bun.spawnSync([BIN, "version"]).stdout.toString().trim();
const report: string[] = [];
const out = (s: string) => {
  report.push(s);
  process.stdout.write(`${s}\n`);
};
out(`# gostash daemon benchmark — ${new Date().toISOString()}`);
out(`${version}; ${gover}; ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}); load average at start ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
out(`command: npx bun scripts/bench/daemon.ts ${Bun.argv.slice(2).join(" ")}`.trimEnd());

// 1. protocol round trips ------------------------------------------------
{
  const directDir = tmp("rpc-direct");
  const daemonDir = tmp("rpc-daemon");
  const d = await startDaemon(daemonDir);
  const floorBridge = ensureTools().floorBridge;
  const variants: { name: string; cmd: string[]; env: Record<string, string> }[] = [
    { name: "direct (gostash)", cmd: [BIN], env: { GOCACHE_DIR: directDir } },
    { name: "daemon (gostash connect)", cmd: [BIN, "connect", d.sock], env: {} },
  ];
  if (floorBridge) variants.push({ name: "daemon (floor-bridge)", cmd: [floorBridge, d.sock], env: {} });
  // Every get through the daemon: the bridge's cost alone (local hits answer these gets without it).
  variants.push({ name: "daemon (connect --no-local-hits)", cmd: [BIN, "connect", "--no-local-hits", d.sock], env: {} });
  const NO_LOCAL = variants.length - 1;
  const body = new Uint8Array(1024).fill(42);
  // Seed both caches with RPC entries.
  for (const v of variants) {
    const c = PluginClient.start(v.cmd, v.env);
    await c.ready;
    const ps: Promise<void>[] = [];
    for (let i = 0; i < RPC; i++) ps.push(c.put(idHex(i, 1), body));
    await Promise.all(ps);
    if ((await c.close()) !== 0) die(`${v.name}: seeding failed`);
  }
  const seqLat = variants.map(() => [] as number[]);
  const seqRate = variants.map(() => [] as number[]);
  const pipeRate = variants.map(() => [] as number[]);
  const putRate = variants.map(() => [] as number[]);
  for (let r = 0; r < RUNS; r++) {
    const order = variants.map((_, i) => (i + r) % variants.length);
    for (const vi of order) {
      const v = variants[vi]!;
      const c = PluginClient.start(v.cmd, v.env);
      await c.ready;
      // sequential get hits
      let t0 = performance.now();
      for (let i = 0; i < RPC; i++) {
        const s = performance.now();
        await c.get(idHex(i, 1));
        seqLat[vi]!.push(performance.now() - s);
      }
      seqRate[vi]!.push(RPC / ((performance.now() - t0) / 1000));
      // pipelined get hits, 64 outstanding
      t0 = performance.now();
      let next = 0;
      const worker = async () => {
        while (next < RPC) await c.get(idHex(next++, 1));
      };
      await Promise.all(Array.from({ length: 64 }, worker));
      pipeRate[vi]!.push(RPC / ((performance.now() - t0) / 1000));
      // pipelined 1 KiB puts (new keys each round)
      t0 = performance.now();
      const n = Math.min(RPC, 1000);
      await Promise.all(Array.from({ length: n }, (_, i) => c.put(idHex(i, 100 + r), body)));
      putRate[vi]!.push(n / ((performance.now() - t0) / 1000));
      if ((await c.close()) !== 0) die(`${v.name}: run failed`);
    }
    log(`rpc round ${r + 1}/${RUNS} done`);
  }
  await d.stop();
  out("");
  out(`## 1. Protocol round trips (${RPC} get hits per run, 1 KiB outputs; ${RUNS} runs each, interleaved)`);
  out(
    table(
      ["variant", "seq p50", "seq p99", "seq req/s", "pipelined(64) req/s", "put 1KiB req/s"],
      variants.map((v, i) => [
        v.name,
        fmtMs(median(seqLat[i]!)),
        fmtMs(quantile(seqLat[i]!, 0.99)),
        median(seqRate[i]!).toFixed(0),
        median(pipeRate[i]!).toFixed(0),
        median(putRate[i]!).toFixed(0),
      ]),
    ),
  );
  out(
    `ratio daemon/direct: seq latency p50 ${(median(seqLat[1]!) / median(seqLat[0]!)).toFixed(2)}x, ` +
      `seq throughput ${paired(seqRate[1]!, seqRate[0]!).toFixed(2)}x, pipelined throughput ${paired(pipeRate[1]!, pipeRate[0]!).toFixed(2)}x, ` +
      `put throughput ${paired(putRate[1]!, putRate[0]!).toFixed(2)}x (paired medians)`,
  );
  out(
    `ratio daemon via connect --no-local-hits / direct: seq latency p50 ${(median(seqLat[NO_LOCAL]!) / median(seqLat[0]!)).toFixed(2)}x, ` +
      `pipelined throughput ${paired(pipeRate[NO_LOCAL]!, pipeRate[0]!).toFixed(2)}x (every get through the daemon)`,
  );
  if (floorBridge)
    out(
      `ratio daemon via connect --no-local-hits / via floor-bridge: seq latency p50 ${(median(seqLat[NO_LOCAL]!) / median(seqLat[2]!)).toFixed(2)}x, ` +
        `seq throughput ${paired(seqRate[NO_LOCAL]!, seqRate[2]!).toFixed(2)}x, pipelined throughput ${paired(pipeRate[NO_LOCAL]!, pipeRate[2]!).toFixed(2)}x ` +
        "(floor-bridge only copies bytes: what remains between it and direct is the extra process itself)",
    );
}

// 2. start-up --------------------------------------------------------------
{
  const d = await startDaemon(tmp("start-daemon"));
  const variants = [
    { name: "gostash connect (daemon up)", cmd: [BIN, "connect", d.sock], env: {} as Record<string, string> },
    { name: "gostash (direct)", cmd: [BIN], env: { GOCACHE_DIR: tmp("start-direct") } },
    { name: "gostash connect (daemon down, fallback)", cmd: [BIN, "connect", join(benchDir, "none.sock")], env: { GOCACHE_DIR: tmp("start-fb") } },
  ];
  const toCap = variants.map(() => [] as number[]);
  const toExit = variants.map(() => [] as number[]);
  const closeToEof = variants.map(() => [] as number[]);
  const floor: number[] = [];
  for (let r = 0; r < STARTUP; r++) {
    // The floor: the same binary doing nothing (`gostash version`), spawn to exit.
    floor.push((await timed([BIN, "version"], process.env as Record<string, string>)).ms);
    for (let k = 0; k < variants.length; k++) {
      const vi = (k + r) % variants.length;
      const v = variants[vi]!;
      const t0 = performance.now();
      const c = PluginClient.start(v.cmd, v.env);
      await c.ready;
      toCap[vi]!.push(performance.now() - t0);
      await c.get(idHex(r, 99)); // as go does: requests, then close
      const tc = performance.now();
      await c.close();
      toExit[vi]!.push(performance.now() - t0);
      closeToEof[vi]!.push((await c.eof) - tc);
    }
  }
  await d.stop();
  out("");
  out(`## 2. Start-up (spawn -> capability line; one get; spawn -> close answered and exited; ${STARTUP} runs each, interleaved)`);
  out(
    table(
      ["variant", "to capability p50", "min", "p90", "to exit p50", "close→stdout EOF p50"],
      variants.map((v, i) => [
        v.name,
        fmtMs(median(toCap[i]!)),
        fmtMs(Math.min(...toCap[i]!)),
        fmtMs(quantile(toCap[i]!, 0.9)),
        fmtMs(median(toExit[i]!)),
        fmtMs(median(closeToEof[i]!)),
      ]),
    ),
  );
  out(`floor (\`gostash version\`, spawn -> exit): p50 ${fmtMs(median(floor))}, min ${fmtMs(Math.min(...floor))}`);
  out("close→stdout EOF: from sending close to the child closing its stdout, which is all `go` waits for at the end of a command (not the exit).");
}

// 3. warm go build std -----------------------------------------------------
if (flags["skip-warm"] !== true) {
  const seed = join(benchDir, `daemon-seed-${gover}`);
  if (!existsSync(join(seed, "README"))) {
    log("seed cache: plain cold go build std (once; kept in .bench/) ...");
    mkdirSync(seed, { recursive: true });
    const r = await must(["go", "build", "std"], goEnv(seed), "seed");
    log(`seed cache filled in ${fmtMs(r.ms)}`);
  }
  const plainDir = tmp("warm-plain");
  const directDir = tmp("warm-direct");
  const daemonDir = tmp("warm-daemon");
  for (const dst of [plainDir, directDir, daemonDir]) cpSync(seed, dst, { recursive: true, preserveTimestamps: true });
  const d = await startDaemon(daemonDir);
  const scratch = tmp("warm-gocache");
  const variants = [
    { name: "plain go cache", env: goEnv(plainDir) },
    { name: "direct (GOCACHEPROG=gostash)", env: goEnv(directDir, { GOCACHEPROG: BIN }) },
    { name: "daemon (GOCACHEPROG=gostash connect)", env: goEnv(scratch, { GOCACHEPROG: `${BIN} connect ${d.sock}` }) },
    { name: "daemon (connect --no-local-hits)", env: goEnv(scratch, { GOCACHEPROG: `${BIN} connect --no-local-hits ${d.sock}` }) },
  ];
  for (const v of variants) {
    const w = await must(["go", "build", "-x", "std"], v.env, `warm-up ${v.name}`);
    const compiles = w.stderr.split("\n").filter((l) => /\/compile /.test(l)).length;
    if (compiles) log(`warning: ${v.name} compiled ${compiles} packages in its warm-up run`);
  }
  const ms = variants.map(() => [] as number[]);
  for (let r = 0; r < RUNS; r++) {
    for (let k = 0; k < variants.length; k++) {
      const vi = (k + r) % variants.length;
      ms[vi]!.push((await must(["go", "build", "std"], variants[vi]!.env, variants[vi]!.name)).ms);
    }
    log(`warm round ${r + 1}/${RUNS}: ${variants.map((v, i) => `${v.name} ${fmtMs(ms[i]!.at(-1)!)}`).join(", ")}`);
  }
  await d.stop();
  out("");
  out(`## 3. Warm \`go build std\` (${RUNS} runs each, interleaved; each variant's cache holds the same entries)`);
  out(
    table(
      ["variant", "median", "min", "max", "vs plain (paired)"],
      variants.map((v, i) => [v.name, fmtMs(median(ms[i]!)), fmtMs(Math.min(...ms[i]!)), fmtMs(Math.max(...ms[i]!)), `${paired(ms[i]!, ms[0]!).toFixed(3)}x`]),
    ),
  );
  out(`daemon / direct (paired): ${paired(ms[2]!, ms[1]!).toFixed(3)}x; with --no-local-hits (every get through the daemon): ${paired(ms[3]!, ms[1]!).toFixed(3)}x`);
}

// 4. cold go build std -----------------------------------------------------
if (flags["skip-cold"] !== true && COLD_RUNS > 0) {
  // The bucket is versitygw on loopback (built into .tools/bin on first use), behind the fault proxy for --cold-latency.
  ensureVersitygw();
  const { startS3Server } = await import("../../test/helpers/s3server.ts");
  const { startFaultProxy } = await import("../../test/helpers/faultproxy.ts");
  const s3 = await startS3Server();
  const proxy = await startFaultProxy(s3.endpoint);
  proxy.set({ latencyMs: COLD_LATENCY });
  const variants = ["plain", "daemon", "no-marks"];
  const ms: Record<string, number[]> = { plain: [], daemon: [], "no-marks": [] };
  const flush: number[] = [];
  for (let r = 0; r < COLD_RUNS; r++) {
    // Each variant first in turn: the machine's state drifts over minutes.
    const order = variants.map((_, i) => variants[(i + r) % variants.length]!);
    for (const which of order) {
      if (which === "plain") {
        ms.plain!.push((await must(["go", "build", "std"], goEnv(tmp("cold-plain")), "cold plain")).ms);
      } else {
        const bucket = `cold-${r}-${which}-${Date.now()}`;
        await s3.createBucket(bucket);
        const env: Record<string, string> = { ...s3.env, GOCACHE_S3_BUCKET: bucket, GOCACHE_S3_ENDPOINT_URL: COLD_LATENCY ? proxy.endpoint : s3.endpoint };
        if (which === "no-marks") env.GOSTASH_TOOLCHAIN_MARKS = "false";
        const d = await startDaemon(tmp("cold-daemon"), env);
        ms[which]!.push((await must(["go", "build", "std"], goEnv(tmp("cold-gocache"), { GOCACHEPROG: `${BIN} connect ${d.sock}` }), `cold ${which}`)).ms);
        const st = await d.stop();
        if (st.code !== 0) die(`daemon exited ${st.code} on SIGTERM:\n${st.stderr}`);
        if (which === "daemon") flush.push(st.ms);
      }
      log(`cold round ${r + 1}/${COLD_RUNS}: ${which} done`);
    }
  }
  await proxy.stop();
  await s3.stop();
  const row = (label: string, xs: number[]) => [label, fmtMs(median(xs)), fmtMs(Math.min(...xs)), fmtMs(Math.max(...xs))];
  out("");
  out(`## 4. Cold \`go build std\` (${COLD_RUNS} run(s) each, daemon uploading to a fresh bucket on versitygw on loopback${COLD_LATENCY ? ` at +${COLD_LATENCY} ms per request` : ""})`);
  const rows = [row("plain go, empty cache", ms.plain!), row("daemon, empty cache", ms.daemon!), row("daemon --no-toolchain-marks (a GET per miss)", ms["no-marks"]!)];
  out(table(["variant", "median", "min", "max"], rows));
  out(`daemon / plain (paired): ${paired(ms.daemon!, ms.plain!).toFixed(3)}x (goal ≤ 1.10x); SIGTERM -> exit (flush) median ${fmtMs(median(flush))}`);
  out(`daemon --no-toolchain-marks / plain (paired): ${paired(ms["no-marks"]!, ms.plain!).toFixed(3)}x`);
}

out("");
out(`load average at end ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
