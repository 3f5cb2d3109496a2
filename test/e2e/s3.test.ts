// End to end with the real `go` command, dist/gostash as GOCACHEPROG in
// direct mode, a real S3 server (versitygw) and a real fault proxy.
//
// "Machine A" and "machine B" are separate GOCACHE/HOME directories sharing
// one bucket. The first test builds from empty caches (the only full cold
// build here); the fault scenarios then start from a copy of A's local cache
// and build a variant of the demo module whose own packages are new, so each
// scenario compiles only a few small packages.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { cpSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodeMeta } from "../../src/store/s3-objects.ts";
import { BIN, run, tempDir } from "../helpers/env.ts";
import { startFaultProxy, type FaultProxy, type Faults } from "../helpers/faultproxy.ts";
import { compileSteps, go, goEnv, writeDemoModule } from "../helpers/go.ts";
import { startS3Server, type S3Server } from "../helpers/s3server.ts";

const GO_TIMEOUT = 300_000;
const EXPECTED = '{"greeting":"hello, WORLD"} 3\n';

const tmp = tempDir("gostash-e2e-s3-");
let s3: S3Server;
let proxy: FaultProxy;
let seedCache = "";

function sha256(b: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(b).digest("hex");
}

/** Every output in a Go-format cache holds bytes that hash to its name. */
function outputsIntact(dir: string): number {
  let n = 0;
  for (const sub of readdirSync(dir)) {
    if (!/^[0-9a-f]{2}$/.test(sub)) continue;
    for (const name of readdirSync(join(dir, sub))) {
      if (!name.endsWith("-d")) continue;
      const p = join(dir, sub, name);
      if (statSync(p).isDirectory()) continue; // Go's own executable entries
      expect(sha256(readFileSync(p))).toBe(name.slice(0, 64));
      n++;
    }
  }
  return n;
}

/** Every object in the bucket decodes and hashes to the output ID it claims. */
async function bucketIntact(): Promise<number> {
  const c = s3.client();
  let n = 0;
  for (const key of await s3.listKeys()) {
    if (key.startsWith("packs/")) continue; // packs and their heads (src/store/packs.ts, test/e2e/packs.test.ts)
    if (key.startsWith("toolchains/")) continue; // toolchain marks (src/store/toolchain-marks.ts)
    const r = await c.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    const meta = decodeMeta(r.Metadata);
    expect(meta).not.toBeNull();
    let body = await r.Body!.transformToByteArray();
    if (meta!.encoding === "zstd") body = await Bun.zstdDecompress(body);
    expect(body.length).toBe(meta!.size);
    expect(sha256(body)).toBe(meta!.outputID);
    n++;
  }
  return n;
}

async function objectCount(): Promise<number> {
  return (await s3.listKeys()).filter((k) => !k.startsWith("packs/") && !k.startsWith("toolchains/")).length;
}

interface Machine {
  name: string;
  cache: string;
  env: Record<string, string | undefined>;
}

function machine(name: string, o: { endpoint?: string; flags?: string; seed?: boolean } = {}): Machine {
  const home = join(tmp.path, name);
  const cache = join(home, "gocache");
  if (o.seed) cpSync(seedCache, cache, { recursive: true });
  const prog = `${BIN} --metrics --s3-timeout=1s --flush-timeout=10s ${o.flags ?? ""}`.trim();
  const env = goEnv({
    gocache: cache,
    prog,
    home,
    extra: { ...s3.env, GOCACHE_S3_ENDPOINT_URL: o.endpoint ?? s3.endpoint },
  });
  return { name, cache, env };
}

/** The demo module plus a file that makes greet (and the command) new actions. */
function variant(name: string): string {
  const dir = join(tmp.path, `mod-${name}`);
  writeDemoModule(dir);
  writeFileSync(join(dir, "greet", "variant.go"), `package greet\n\n// Variant names this copy of the module.\nconst Variant = ${JSON.stringify(name)}\n`);
  return dir;
}

async function buildAndTest(m: Machine, mod: string): Promise<{ build: string; test: string; binary: string }> {
  const binary = join(tmp.path, `${m.name}.demo`);
  const b = await go(["build", "-x", "-o", binary, "./cmd/demo"], mod, m.env, GO_TIMEOUT);
  if (b.code !== 0) throw new Error(`${m.name}: go build failed (${b.code}):\n${b.stderr.slice(-3000)}`);
  const out = await run([binary], { timeoutMs: 30_000 });
  expect(out.stdout).toBe(EXPECTED);
  const t = await go(["test", "./..."], mod, m.env, GO_TIMEOUT);
  if (t.code !== 0) throw new Error(`${m.name}: go test failed (${t.code}):\n${t.stdout}\n${t.stderr.slice(-3000)}`);
  expect(t.stdout).toMatch(/^ok\s+example\.com\/demo\/greet/m);
  expect(t.stdout).toMatch(/^ok\s+example\.com\/demo\/mathx/m);
  return { build: b.stderr, test: t.stdout + t.stderr, binary };
}

/** Sums a counter over every summary the plugin printed ("integrity failures 3"). */
function counter(stderr: string, label: string): number {
  let n = 0;
  for (const m of stderr.matchAll(new RegExp(`${label} (\\d+)`, "g"))) n += Number(m[1]);
  return n;
}

beforeAll(async () => {
  s3 = await startS3Server();
  proxy = await startFaultProxy(s3.endpoint);
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await s3?.stop();
  tmp.cleanup();
});

describe("shared S3 tier through the go command", () => {
  test(
    "machine A builds and uploads; machine B (empty GOCACHE) compiles nothing and its tests are cached",
    async () => {
      const mod = join(tmp.path, "mod");
      writeDemoModule(mod);
      const a = machine("A");
      const ra = await buildAndTest(a, mod);
      expect(compileSteps(ra.build).length).toBeGreaterThan(10);
      expect(counter(ra.build + ra.test, "uploads")).toBeGreaterThan(50);
      expect(counter(ra.build + ra.test, "left at close")).toBe(0);
      expect(outputsIntact(a.cache)).toBeGreaterThan(50);
      seedCache = a.cache;
      // The bucket was empty: A's go build asked for no single object, and
      // wrote the mark of the go command's version and platform before its
      // uploads; its go test (the mark is there now) asks as before.
      expect(counter(ra.build, "misses without a GET")).toBeGreaterThan(10);
      expect(counter(ra.build, "object gets")).toBe(0);
      expect(counter(ra.build, "marks written")).toBe(1);
      expect(counter(ra.test, "object gets")).toBeGreaterThan(0);
      const goenv = (await go(["env", "GOOS", "GOARCH", "GOVERSION"], mod, a.env, GO_TIMEOUT)).stdout.trim().split("\n");
      expect(await s3.listKeys()).toContain(`toolchains/${goenv[0]}-${goenv[1]}/${goenv[2]}`);

      const b = machine("B");
      const rb = await buildAndTest(b, mod);
      expect(compileSteps(rb.build)).toEqual([]);
      expect(rb.test).toMatch(/^ok\s+example\.com\/demo\/greet\s+\(cached\)/m);
      expect(rb.test).toMatch(/^ok\s+example\.com\/demo\/mathx\s+\(cached\)/m);
      // "hits N (...; local N, pack N, remote N)": every hit came from the
      // bucket, from A's packs or as a single object. B started empty and
      // compiles nothing, so it has no local hits.
      expect(counter(rb.build, "pack") + counter(rb.build, "remote")).toBeGreaterThan(10);
      expect(counter(rb.build, "local")).toBe(0);
      expect(counter(ra.build, "packs: uploads")).toBeGreaterThan(0);
      expect(counter(rb.build, "packs: heads")).toBe(1);
      // Byte-identical to A's real build.
      expect(Buffer.compare(readFileSync(rb.binary), readFileSync(ra.binary))).toBe(0);
      expect(outputsIntact(b.cache)).toBeGreaterThan(50);
      // go vet and go list -export are served too.
      const vet = await go(["vet", "./..."], mod, b.env, GO_TIMEOUT);
      expect(vet.code).toBe(0);
      const list = await go(["list", "-export", "-f", "{{.Export}}", "./greet"], mod, b.env, GO_TIMEOUT);
      expect(list.code).toBe(0);
      expect(list.stdout.trim().startsWith(b.cache)).toBe(true);
      expect(await bucketIntact()).toBeGreaterThan(50);
    },
    GO_TIMEOUT * 3,
  );

  // Counters from the plugin's --metrics summary: "s3: ... misses N, errors N",
  // "integrity failures N", "breaker trips N", "hits N (...; local N, remote N)".
  const s3Errors = (e: string) => counter(e, "misses \\d+, errors");
  const remoteHits = (e: string) => counter(e, "remote") + counter(e, "pack");
  const faults: [string, Partial<Faults>, (stderr: string) => void][] = [
    ["down", { down: true }, (e) => (expect(s3Errors(e)).toBeGreaterThan(0), expect(remoteHits(e)).toBe(0))],
    ["slow", { latencyMs: 150 }, (e) => (expect(remoteHits(e)).toBeGreaterThan(0), expect(s3Errors(e)).toBe(0))],
    ["hang", { hang: true }, (e) => (expect(counter(e, "breaker trips")).toBeGreaterThan(0), expect(remoteHits(e)).toBe(0))],
    ["500s", { status500: true }, (e) => (expect(counter(e, "breaker trips")).toBeGreaterThan(0), expect(remoteHits(e)).toBe(0))],
    ["cut", { cutBody: true, only: "GET" }, (e) => (expect(s3Errors(e) + counter(e, "integrity failures")).toBeGreaterThan(0), expect(remoteHits(e)).toBe(0))],
    // Empty outputs have no bytes to corrupt and may still be (correct) hits.
    ["corrupt", { corruptBody: true, only: "GET" }, (e) => expect(counter(e, "integrity failures")).toBeGreaterThan(0)],
  ];
  for (const [name, fault, check] of faults) {
    test(
      `fault "${name}": the build succeeds with correct output and nothing wrong is served`,
      async () => {
        expect(seedCache).not.toBe("");
        const mod = variant(name);
        await buildAndTest(machine(`${name}-A`, { seed: true }), mod);
        const b = machine(`${name}-B`, { seed: true, endpoint: proxy.endpoint, flags: "--flush-timeout=3s" });
        proxy.set(fault);
        let r: Awaited<ReturnType<typeof buildAndTest>>;
        try {
          r = await buildAndTest(b, mod);
        } finally {
          proxy.reset();
        }
        check(r.build + r.test);
        expect(outputsIntact(b.cache)).toBeGreaterThan(50);
      },
      GO_TIMEOUT * 2,
    );
  }

  test(
    "an object whose bytes were altered in the bucket is never served",
    async () => {
      const mod = variant("altered");
      const before = new Set<string>();
      for (const k of await s3.listKeys()) before.add(k);
      await buildAndTest(machine("altered-A", { seed: true }), mod);
      const fresh = (await s3.listKeys()).filter((k) => !before.has(k));
      expect(fresh.length).toBeGreaterThan(0);
      for (const k of fresh) {
        const file = join(s3.dataDir, s3.bucket, k);
        const bytes = readFileSync(file);
        if (bytes.length === 0) continue;
        bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
        writeFileSync(file, bytes);
      }
      // Single objects only: whether a pack (altered too) would have brought
      // them first depends on timing; altered packs are test/e2e/packs.test.ts's.
      const b = machine("altered-B", { seed: true, flags: "--no-prefetch" });
      const r = await buildAndTest(b, mod);
      expect(counter(r.build + r.test, "integrity failures")).toBeGreaterThan(0);
      outputsIntact(b.cache);
    },
    GO_TIMEOUT * 2,
  );

  test(
    "--read-only writes nothing to the bucket",
    async () => {
      const mod = variant("readonly");
      const n0 = await objectCount();
      proxy.resetCounts();
      const b = machine("ro", { seed: true, endpoint: proxy.endpoint, flags: "--read-only" });
      const r = await buildAndTest(b, mod);
      expect(compileSteps(r.build).length).toBeGreaterThan(0); // there was something to upload
      expect(proxy.counts.GET ?? 0).toBeGreaterThan(0);
      expect(proxy.counts.PUT ?? 0).toBe(0);
      expect(proxy.requests).toBe(proxy.counts.GET ?? 0);
      expect(await objectCount()).toBe(n0);
    },
    GO_TIMEOUT * 2,
  );

  test(
    "kill -9 of the plugin during uploads leaves nothing a later run serves wrong",
    async () => {
      const mod = variant("killed");
      const m = machine("killed-A", { seed: true, endpoint: proxy.endpoint });
      proxy.resetCounts();
      proxy.set({ latencyMs: 1_500, only: "PUT" });
      const p = Bun.spawn(["go", "build", "-o", join(tmp.path, "killed.demo"), "./cmd/demo"], {
        cwd: mod,
        env: { ...process.env, ...m.env } as Record<string, string>,
        stdout: "ignore",
        stderr: "pipe",
      });
      const hardStop = setTimeout(() => p.kill(9), GO_TIMEOUT);
      let killed = 0;
      try {
        for (let i = 0; i < 6000 && !killed && p.exitCode === null; i++) {
          await Bun.sleep(20);
          if ((proxy.counts.PUT ?? 0) < 1) continue;
          // Uploads are on their way: kill -9 the plugin go started.
          for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
            try {
              const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
              const m2 = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat);
              if (m2 && Number(m2[2]) === p.pid && m2[1]!.startsWith("gostash")) {
                process.kill(Number(pid), "SIGKILL");
                killed = Number(pid);
              }
            } catch {}
          }
        }
        await p.exited;
      } finally {
        clearTimeout(hardStop);
        proxy.reset();
      }
      expect(killed).toBeGreaterThan(0);
      // Let any upload the proxy was still holding reach the server.
      await Bun.sleep(2_000);
      // Everything in the bucket is whole, and a later run builds correctly.
      expect(await bucketIntact()).toBeGreaterThan(0);
      const c = machine("killed-C", { seed: true });
      await buildAndTest(c, mod);
      outputsIntact(c.cache);
      outputsIntact(m.cache);
    },
    GO_TIMEOUT * 2,
  );
});
