// The daemon's resource limits end to end: the compiled `gostash serve`,
// the real go command through `gostash connect`, a real S3 server
// (versitygw) and real HTTP clients. Every limit is reached for real, the
// build still succeeds, and the refusal is counted on /metrics.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { decodeHead } from "../../src/store/packs.ts";
import { BIN, tempDir } from "../helpers/env.ts";
import { go, goEnv, writeDemoModule } from "../helpers/go.ts";
import { startS3Server, type S3Server } from "../helpers/s3server.ts";
import { getLine, randomID, RawClient, startDaemon, type Daemon } from "../daemon/helpers.ts";
import { startUpstream, writeTestModules, type Upstream } from "../modproxy/helpers.ts";
import { parsePrometheus, value } from "../http/prom-parse.ts";

const GO_TIMEOUT = 300_000;
const tmp = tempDir("gostash-e2e-limits-");
const demo = join(tmp.path, "demo");
const daemons: Daemon[] = [];

beforeAll(() => writeDemoModule(demo));
afterAll(async () => {
  for (const d of daemons) if (d.proc.exitCode === null) await d.stop("SIGKILL");
  tmp.cleanup();
});

async function daemon(name: string, args: string[], env: Record<string, string> = {}): Promise<Daemon> {
  const d = await startDaemon([`--plugin=${join(tmp.path, `${name}.sock`)}`, "--http=127.0.0.1:0", ...args], env);
  daemons.push(d);
  return d;
}

async function metric(d: Daemon, name: string): Promise<number> {
  return value(parsePrometheus(await (await fetch(`${d.http}/metrics`)).text()), name) ?? 0;
}

function envFor(d: Daemon, name: string, extra: Record<string, string> = {}) {
  return goEnv({
    gocache: join(tmp.path, `gocache-${name}`),
    prog: `${BIN} connect ${d.plugin}`,
    home: join(tmp.path, `home-${name}`),
    extra,
  });
}

function mustPass(r: { code: number; stderr: string }, what: string, d?: Daemon): void {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}):\n${r.stderr.slice(-3000)}${d ? `\n--- daemon:\n${d.stderr().slice(-2000)}` : ""}`);
}

const gostashLines = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("gostash"));

describe("--max-connections", () => {
  test("a go build refused while another connection holds the only slot: one warning, built from the local cache, refusal counted", async () => {
    const d = await daemon("busy", [`--cache-dir=${join(tmp.path, "busy-cache")}`, "--max-connections=1"]);
    const holder = await RawClient.connect(d.addr);
    await holder.send(getLine(1, randomID()));
    expect((await holder.response(1)).Miss).toBe(true);
    const fallback = join(tmp.path, "busy-fallback");
    const r = await go(["build", "-o", "demo.bin", "./cmd/demo"], demo, envFor(d, "busy", { GOCACHE_DIR: fallback }), GO_TIMEOUT);
    mustPass(r, "go build", d);
    const lines = gostashLines(r.stderr);
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain("busy: too many connections");
    expect(lines[0]).toContain("--max-connections");
    const out = Bun.spawnSync([join(demo, "demo.bin")]).stdout.toString();
    expect(out).toBe('{"greeting":"hello, WORLD"} 3\n');
    expect(existsSync(fallback)).toBe(true);
    expect(await metric(d, "gostash_connections_refused_total")).toBe(1);
    expect(d.stderr()).toContain("raise --max-connections / GOSTASH_MAX_CONNECTIONS");
    holder.kill();
  }, GO_TIMEOUT);
});

describe("--idle-timeout", () => {
  test("a raw connection that says nothing is closed and counted", async () => {
    const d = await daemon("idle-raw", [`--cache-dir=${join(tmp.path, "idle-raw-cache")}`, "--idle-timeout=1s"]);
    const c = await RawClient.connect(d.addr);
    expect(await c.waitClosed(30_000)).toBe(true);
    expect(await metric(d, "gostash_connections_idle_closed_total")).toBe(1);
  }, 60_000);

  test("go test with a test quieter than the idle timeout: the daemon closes the idle connection, connect dials again, nothing is said, the result is cached", async () => {
    const d = await daemon("idle", [`--cache-dir=${join(tmp.path, "idle-cache")}`, "--idle-timeout=1s"]);
    const mod = join(tmp.path, "slow");
    mkdirSync(mod, { recursive: true });
    writeFileSync(join(mod, "go.mod"), "module example.com/slow\n\ngo 1.22\n");
    writeFileSync(join(mod, "slow.go"), "package slow\n\n// Three is 3.\nfunc Three() int { return 3 }\n");
    writeFileSync(
      join(mod, "slow_test.go"),
      'package slow\n\nimport (\n\t"testing"\n\t"time"\n)\n\n// Quiet for longer than the idle timeout: go sends no cache request meanwhile.\nfunc TestSlow(t *testing.T) {\n\ttime.Sleep(3 * time.Second)\n\tif Three() != 3 {\n\t\tt.Fatal()\n\t}\n}\n',
    );
    const env = envFor(d, "idle");
    const r = await go(["test", "./..."], mod, env, GO_TIMEOUT);
    mustPass(r, "go test", d);
    expect(r.stdout).toMatch(/^ok\s+example.com\/slow\s/m);
    expect(gostashLines(r.stderr)).toEqual([]);
    expect(await metric(d, "gostash_connections_idle_closed_total")).toBeGreaterThanOrEqual(1);
    expect(await metric(d, "gostash_connections_total")).toBeGreaterThanOrEqual(2);
    // The test result was put after the quiet spell, through the new connection.
    const again = await go(["test", "./..."], mod, env, GO_TIMEOUT);
    mustPass(again, "go test (again)", d);
    expect(again.stdout).toMatch(/^ok\s+example.com\/slow\s+\(cached\)/m);
  }, GO_TIMEOUT);
});

describe("with the S3 tier", () => {
  let s3: S3Server;
  beforeAll(async () => {
    s3 = await startS3Server();
  }, 60_000);
  afterAll(async () => {
    await s3?.stop();
  });

  test("--max-put-size and --upload-queue-bytes: go build, vet and list -export succeed; large outputs stay local, drops are counted, nothing over the limit reaches the bucket", async () => {
    const cache = join(tmp.path, "s3-cache");
    const d = await daemon("s3", [`--cache-dir=${cache}`, "--max-put-size=1MiB", "--upload-queue-bytes=512KiB", "--upload-concurrency=1", "--metrics"], s3.env);
    const env = envFor(d, "s3");
    mustPass(await go(["build", "./..."], demo, env, GO_TIMEOUT), "go build", d);
    mustPass(await go(["vet", "./..."], demo, env, GO_TIMEOUT), "go vet", d);
    const l = await go(["list", "-export", "-f", "{{.Export}}", "./greet", "fmt"], demo, env, GO_TIMEOUT);
    mustPass(l, "go list -export", d);
    for (const f of l.stdout.trim().split("\n")) expect(existsSync(f)).toBe(true);

    // Outputs over 1 MiB (the runtime's archive, for one) are never queued;
    // those between 512 KiB and 1 MiB never fit in the byte budget.
    expect(await metric(d, "gostash_puts_over_limit_total")).toBeGreaterThan(0);
    expect(await metric(d, "gostash_upload_drops_bytes_total")).toBeGreaterThan(0);
    expect(await metric(d, "gostash_upload_drops_total")).toBeGreaterThanOrEqual(await metric(d, "gostash_upload_drops_bytes_total"));
    expect(await d.stop("SIGTERM", 120_000)).toBe(0); // flushes the queue
    const err = d.stderr();
    expect(err.match(/is over --max-put-size 1\.0 MiB \(GOSTASH_MAX_PUT_SIZE\)/g)?.length).toBe(1);
    expect(err.match(/--upload-queue-bytes 512\.0 KiB \(GOSTASH_UPLOAD_QUEUE_BYTES\)/g)?.length).toBe(1);
    expect(err).toMatch(/gostash: limits: puts over --max-put-size \d+, uploads over --upload-queue-bytes \d+/);

    // The bucket holds small outputs only, as single objects and in packs; every large one stayed local.
    const keys = await s3.listKeys();
    const objects = keys.filter((k) => /^[0-9a-f]{2}\/[0-9a-f]{64}$/.test(k));
    expect(objects.length).toBeGreaterThan(0);
    const sizeOf = (action: string) => Number(readFileSync(join(cache, action.slice(0, 2), `${action}-a`), "latin1").split(/ +/)[3]);
    for (const k of objects) expect(sizeOf(k.split("/").pop()!)).toBeLessThanOrEqual(512 * 1024);
    const heads = keys.filter((k) => k.endsWith(".head"));
    expect(heads.length).toBeGreaterThan(0);
    for (const k of heads) {
      const got = await s3.client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: k }));
      const head = decodeHead(await got.Body!.transformToByteArray(), k.slice("packs/".length, -".head".length));
      const entries = head.packs.flatMap((p) => p.entries);
      expect(entries.length).toBeGreaterThan(0);
      for (const e of entries) expect(e.meta.size).toBeLessThanOrEqual(1024 * 1024);
    }
    // Besides them, only packs and leads (copies of a pack's first segment, which holds only what the pack holds),
    // and the mark of the go command's toolchain (connect's hello told the daemon).
    const others = keys.filter((k) => !objects.includes(k) && !heads.includes(k) && !/^packs\/[0-9a-f]{64}\.(pack|lead)$/.test(k));
    expect(others.filter((k) => !k.startsWith("toolchains/"))).toEqual([]);
    expect(others.length).toBe(1);
  }, GO_TIMEOUT);
});

describe("HTTP limits", () => {
  let up: Upstream;
  let d: Daemon;
  beforeAll(async () => {
    writeTestModules(join(tmp.path, "up"));
    up = startUpstream(join(tmp.path, "up"));
    d = await daemon("http", [
      `--cache-dir=${join(tmp.path, "http-cache")}`,
      "--modproxy",
      `--upstream=${up.url}`,
      "--sumdb=off",
      "--upstream-retries=0",
      "--upstream-timeout=4s",
      "--max-http-requests=2",
      "--max-http-body=1KiB",
      "--http-idle-timeout=1s",
    ]);
  }, 60_000);
  afterAll(() => up?.stop());

  test("413 for a body over --max-http-body (with a length, and chunked), counted", async () => {
    const big = await fetch(`${d.http}/mod/example.com/lib/@v/list`, { method: "POST", body: "x".repeat(2048) });
    expect(big.status).toBe(413);
    expect(await big.text()).toContain("--max-http-body");
    const chunked = await fetch(`${d.http}/mod/example.com/lib/@v/list`, {
      method: "POST",
      body: new ReadableStream({
        start(c) {
          for (let i = 0; i < 8; i++) c.enqueue(new Uint8Array(512));
          c.close();
        },
      }),
    });
    expect(chunked.status).toBe(413);
    await chunked.text();
    // A small body is let through (the proxy itself then refuses the method).
    const small = await fetch(`${d.http}/mod/example.com/lib/@v/list`, { method: "POST", body: "x" });
    expect(small.status).not.toBe(413);
    expect(await metric(d, "gostash_http_too_large_total")).toBe(2);
  }, 60_000);

  test("503 with Retry-After beyond --max-http-requests in flight; /healthz and /metrics still answer; requests slower than the idle timeout are not cut", async () => {
    // Two requests whose upstream never answers (until --upstream-timeout) hold both slots.
    up.stall.add("/example.com/lib/@v/list");
    up.stall.add("/example.com/dep/@v/list");
    const slow = ["lib", "dep"].map((m) => fetch(`${d.http}/mod/example.com/${m}/@v/list`).then(async (r) => ({ status: r.status, body: await r.text() })));
    const end = Date.now() + 20_000;
    while (up.count("/example.com/lib/@v/list") < 1 || up.count("/example.com/dep/@v/list") < 1) {
      if (Date.now() > end) throw new Error("the stalled requests never reached the upstream");
      await Bun.sleep(10);
    }
    const third = await fetch(`${d.http}/mod/example.com/!upper/!case/@v/list`);
    expect(third.status).toBe(503);
    expect(third.headers.get("retry-after")).toBe("1");
    expect(await third.text()).toContain("--max-http-requests");
    expect((await fetch(`${d.http}/healthz`)).status).toBe(200);
    expect(await metric(d, "gostash_http_busy_total")).toBe(1);
    expect(await metric(d, "gostash_http_in_flight")).toBe(2);
    // The stalled ones end with an HTTP answer after 4s, well past the 1s idle timeout.
    up.stall.clear();
    for (const r of await Promise.all(slow)) expect(r.status).toBeGreaterThanOrEqual(200);
    // Slots free again.
    expect((await fetch(`${d.http}/mod/example.com/!upper/!case/@v/list`)).status).toBe(200);
  }, 60_000);

  test("--http-idle-timeout closes a connection that sends nothing", async () => {
    const port = Number(new URL(d.http!).port);
    let closed!: () => void;
    const gone = new Promise<void>((r) => (closed = r));
    const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {}, close: () => closed() } });
    let cutByUs = false;
    const t = setTimeout(() => {
      cutByUs = true;
      s.terminate();
    }, 60_000);
    await gone;
    clearTimeout(t);
    expect(cutByUs).toBe(false);
  }, 90_000);
});
