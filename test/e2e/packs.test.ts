// Packs end to end (docs/packs.md): the real `go` command, dist/gostash as
// GOCACHEPROG (plugin mode and through one daemon), a real S3 server
// (versitygw) behind the fault proxy that counts requests.
//
// Machine A builds and tests the demo module from an empty cache and
// uploads; machine B (empty GOCACHE, same bucket and prefix) must compile
// nothing, report its tests (cached) and link the same binary, with its
// outputs streamed from packs. Then the packs are damaged in the bucket
// (a flipped byte, a truncation, the head deleted, a pack of another build
// configuration under the key): B's build stays correct and the damage is
// counted. Each scenario has its own key prefix; A's later machines start
// from a copy of the first A's cache, so they compile only what is new.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, readdirSync, readFileSync, statSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parsePrometheus, value } from "../http/prom-parse.ts";
import { startDaemon } from "../daemon/helpers.ts";
import { BIN, run, tempDir } from "../helpers/env.ts";
import { startFaultProxy, type FaultProxy } from "../helpers/faultproxy.ts";
import { compileSteps, go, goEnv, writeDemoModule } from "../helpers/go.ts";
import { startS3Server, type S3Server } from "../helpers/s3server.ts";

const GO_TIMEOUT = 300_000;
const EXPECTED = '{"greeting":"hello, WORLD"} 3\n';

const tmp = tempDir("gostash-e2e-packs-");
let s3: S3Server;
let proxy: FaultProxy;
let mod = "";
let seedCache = "";
let seedBinary = "";

interface Machine {
  name: string;
  cache: string;
  env: Record<string, string | undefined>;
}

function machine(name: string, prefix: string, o: { seed?: boolean; prog?: string; extra?: Record<string, string> } = {}): Machine {
  const home = join(tmp.path, name);
  const cache = join(home, "gocache");
  if (o.seed) cpSync(seedCache, cache, { recursive: true });
  const prog = o.prog ?? `${BIN} --metrics --s3-timeout=2s --flush-timeout=20s --prefix=${prefix}`;
  return { name, cache, env: goEnv({ gocache: cache, prog, home, extra: { ...s3.env, GOCACHE_S3_ENDPOINT_URL: proxy.endpoint, ...o.extra } }) };
}

interface Built {
  build: string;
  test: string;
  binary: string;
}

async function buildAndTest(m: Machine): Promise<Built> {
  const binary = join(tmp.path, `${m.name}.demo`);
  const b = await go(["build", "-x", "-o", binary, "./cmd/demo"], mod, m.env, GO_TIMEOUT);
  if (b.code !== 0) throw new Error(`${m.name}: go build failed (${b.code}):\n${b.stderr.slice(-3000)}`);
  expect((await run([binary], { timeoutMs: 30_000 })).stdout).toBe(EXPECTED);
  const t = await go(["test", "./..."], mod, m.env, GO_TIMEOUT);
  if (t.code !== 0) throw new Error(`${m.name}: go test failed (${t.code}):\n${t.stdout}\n${t.stderr.slice(-3000)}`);
  expect(t.stdout).toMatch(/^ok\s+example\.com\/demo\/greet/m);
  return { build: b.stderr, test: t.stdout + t.stderr, binary };
}

/** Sums "label N" over every --metrics summary in the text. */
function counter(text: string, label: string): number {
  let n = 0;
  for (const m of text.matchAll(new RegExp(`${label} (\\d+)`, "g"))) n += Number(m[1]);
  return n;
}
const packHits = (e: string) => counter(e, "pack");
const packErrors = (e: string) => counter(e, "bad entries \\d+, errors");

/** The files of the prefix's objects in versitygw's data directory. */
function objects(prefix: string, suffix: string): string[] {
  const dir = join(s3.dataDir, s3.bucket, prefix, "packs");
  return readdirSync(dir)
    .filter((n) => n.endsWith(suffix))
    .map((n) => join(dir, n))
    .sort((a, b) => statSync(b).size - statSync(a).size);
}

function outputsIntact(dir: string): number {
  let n = 0;
  for (const sub of readdirSync(dir)) {
    if (!/^[0-9a-f]{2}$/.test(sub)) continue;
    for (const name of readdirSync(join(dir, sub))) {
      const p = join(dir, sub, name);
      if (!name.endsWith("-d") || statSync(p).isDirectory()) continue;
      expect(new Bun.CryptoHasher("sha256").update(readFileSync(p)).digest("hex")).toBe(name.slice(0, 64));
      n++;
    }
  }
  return n;
}

beforeAll(async () => {
  s3 = await startS3Server();
  proxy = await startFaultProxy(s3.endpoint);
  mod = join(tmp.path, "mod");
  writeDemoModule(mod);
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await s3?.stop();
  tmp.cleanup();
});

describe("packs through the go command", () => {
  test(
    "A builds from empty and uploads; B on an empty disk compiles nothing, tests are (cached), the binary is identical, from packs",
    async () => {
      const a = machine("A", "main");
      const ra = await buildAndTest(a);
      expect(compileSteps(ra.build).length).toBeGreaterThan(10);
      expect(counter(ra.build + ra.test, "packs: uploads")).toBeGreaterThanOrEqual(2); // build, then test's delta
      seedCache = a.cache;
      seedBinary = ra.binary;

      const b = machine("B", "main");
      proxy.resetCounts();
      const bb = await go(["build", "-x", "-o", join(tmp.path, "B.demo"), "./cmd/demo"], mod, b.env, GO_TIMEOUT);
      expect(bb.code).toBe(0);
      expect(compileSteps(bb.stderr)).toEqual([]);
      // One head, the pack's segments, nothing one output at a time.
      expect(proxy.requests).toBeLessThanOrEqual(10);
      expect(packHits(bb.stderr)).toBeGreaterThan(20);
      expect(counter(bb.stderr, "remote")).toBeLessThan(packHits(bb.stderr) / 4);
      // Landed by the binary's landing threads, none lost on the way (a worker that did not start would fail entries).
      expect(packErrors(bb.stderr)).toBe(0);
      // The link of cmd/demo, which A asked for and go never stores: a miss without a request.
      expect(counter(bb.stderr, "known misses")).toBeGreaterThan(0);
      expect(counter(bb.stderr, "object gets")).toBe(0);
      const t = await go(["test", "./..."], mod, b.env, GO_TIMEOUT);
      expect(t.stdout).toMatch(/^ok\s+example\.com\/demo\/greet\s+\(cached\)/m);
      expect(t.stdout).toMatch(/^ok\s+example\.com\/demo\/mathx\s+\(cached\)/m);
      // go test has the same key as the build (its first gets), so it streams the test's pack from the head B's build read: no second head GET.
      expect(counter(t.stderr, "seen before")).toBe(1);
      expect(counter(t.stderr, "packs: heads")).toBe(0);
      expect(counter(t.stderr, "object gets")).toBe(0);
      expect(Buffer.compare(readFileSync(join(tmp.path, "B.demo")), readFileSync(ra.binary))).toBe(0);
      expect(outputsIntact(b.cache)).toBeGreaterThan(50);
    },
    GO_TIMEOUT * 3,
  );

  test(
    "through one daemon: each go command's pack is uploaded after its connection closed; a fresh daemon's builds read them; the toolchain goes by hello",
    async () => {
      const d1 = await startDaemon([`--plugin=${join(tmp.path, "d1.sock")}`, "--http=0", `--cache-dir=${join(tmp.path, "d1")}`, "--prefix=daemon"], { ...s3.env, GOCACHE_S3_ENDPOINT_URL: proxy.endpoint });
      try {
        const a = machine("DA", "daemon", { prog: `${BIN} connect ${join(tmp.path, "d1.sock")}` });
        await buildAndTest(a);
        // connect told the daemon its go command's toolchain (daemon/hello.ts), new to this prefix:
        // the build's misses asked for no object, its first upload wrote the mark.
        const fams = parsePrometheus(await (await fetch(`${d1.http}/metrics`)).text());
        expect(value(fams, "gostash_toolchain_misses_total")!).toBeGreaterThan(10);
        expect(value(fams, "gostash_toolchain_marks_up_total")).toBe(1);
        const goenv = (await go(["env", "GOOS", "GOARCH", "GOVERSION"], mod, a.env, GO_TIMEOUT)).stdout.trim().split("\n");
        expect(await s3.listKeys()).toContain(`daemon/toolchains/${goenv[0]}-${goenv[1]}/${goenv[2]}`);
        expect(await d1.stop("SIGTERM", 120_000)).toBe(0);
      } finally {
        if (d1.proc.exitCode === null) await d1.stop("SIGKILL");
      }
      expect(objects("daemon", ".pack").length).toBeGreaterThanOrEqual(1);
      // Without marks the daemon leaves the toolchain its connections' hellos say unused.
      const d2 = await startDaemon([`--plugin=${join(tmp.path, "d2.sock")}`, "--http=0", `--cache-dir=${join(tmp.path, "d2")}`, "--prefix=daemon", "--no-toolchain-marks"], { ...s3.env, GOCACHE_S3_ENDPOINT_URL: proxy.endpoint });
      try {
        const b = machine("DB", "daemon", { prog: `${BIN} connect ${join(tmp.path, "d2.sock")}` });
        const rb = await buildAndTest(b);
        expect(compileSteps(rb.build)).toEqual([]);
        expect(rb.test).toMatch(/\(cached\)/);
        expect(Buffer.compare(readFileSync(rb.binary), readFileSync(seedBinary))).toBe(0);
        const fams = parsePrometheus(await (await fetch(`${d2.http}/metrics`)).text());
        expect(value(fams, "gostash_hits_total", { tier: "pack" })!).toBeGreaterThan(20);
        expect(value(fams, "gostash_pack_integrity_failures_total") ?? 0).toBe(0);
        expect(value(fams, "gostash_toolchain_misses_total") ?? 0).toBe(0);
        // No takeover by connect, no conversation the daemon found broken.
        expect(rb.build + rb.test).not.toContain("gostash connect");
        expect(d2.stderr()).not.toContain("closing it");
      } finally {
        await d2.stop("SIGKILL");
      }
    },
    GO_TIMEOUT * 3,
  );

  // Each: seed a prefix from A's cache (one pack of everything A's commands use), damage it, build on an empty B.
  const damages: [string, (prefix: string) => Promise<void> | void, (stderr: string) => void][] = [
    ["a corrupted pack byte", (p) => flipByte(objects(p, ".pack")[0]!), (e) => expect(counter(e, "integrity failures")).toBeGreaterThan(0)],
    ["a truncated pack", (p) => truncateSync(objects(p, ".pack")[0]!, Math.floor(statSync(objects(p, ".pack")[0]!).size / 2)), (e) => expect(packErrors(e)).toBeGreaterThan(0)],
    ["a missing index (head)", (p) => objects(p, ".head").forEach((f) => unlinkSync(f)), (e) => (expect(counter(e, "missing")).toBeGreaterThan(0), expect(packHits(e)).toBe(0))],
    [
      "a pack of another build configuration under the key",
      async (p) => {
        // GOAMD64=v3 changes every compile action but not the go command's first gets (its package index): same key, other outputs.
        for (const f of objects(p, ".head")) unlinkSync(f);
        const other = machine(`${p}-v3`, p, { seed: true, extra: { GOAMD64: "v3" } });
        const r = await go(["build", "./..."], mod, other.env, GO_TIMEOUT);
        expect(r.code).toBe(0);
      },
      (e) => expect(counter(e, "unused")).toBeGreaterThan(0),
    ],
  ];
  for (const [name, damage, check] of damages) {
    test(
      `${name}: B's build stays correct, the damage is counted`,
      async () => {
        expect(seedCache).not.toBe("");
        const p = `dmg-${name.replace(/\W+/g, "-")}`;
        // A's warm cache, a fresh prefix: one pack holds everything its commands use.
        await buildAndTest(machine(`${p}-A`, p, { seed: true }));
        await damage(p);
        const b = machine(`${p}-B`, p, { prog: `${BIN} --metrics --s3-timeout=2s --read-only --prefix=${p}` });
        const r = await buildAndTest(b);
        check(r.build + r.test);
        expect(Buffer.compare(readFileSync(r.binary), readFileSync(seedBinary))).toBe(0);
        expect(outputsIntact(b.cache)).toBeGreaterThan(20);
      },
      GO_TIMEOUT * 2,
    );
  }
});

function flipByte(file: string): void {
  const b = readFileSync(file);
  b[Math.floor(b.length / 2)]! ^= 0x5a;
  writeFileSync(file, b);
}
