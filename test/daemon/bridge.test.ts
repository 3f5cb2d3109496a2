// `gostash connect` (the compiled binary) between a scripted client on its
// stdin/stdout and a daemon socket served in-process by the test.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CAPABILITY_LINE } from "../../src/cacheprog/protocol.ts";
import { startPluginServer, type PluginServer } from "../../src/daemon/server.ts";
import { createDiskStore } from "../../src/store/disk.ts";
import { createLocalCache } from "../../src/store/local-cache.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { BIN, tempDir } from "../helpers/env.ts";
import { closeLine, getLine, putLines, randomID, sha256hex, type Response } from "./helpers.ts";

let tmp: ReturnType<typeof tempDir>;
let server: PluginServer;
let sock: string;
let metrics: Metrics;

beforeEach(async () => {
  tmp = tempDir("gostash-bridge-");
  sock = join(tmp.path, "d.sock");
  metrics = new Metrics();
  server = await startPluginServer({
    address: { kind: "unix", path: sock },
    handler: createLocalCache(createDiskStore({ dir: join(tmp.path, "daemon-cache") }), metrics),
    metrics,
    logger: createLogger(),
  });
});

afterEach(async () => {
  server.stopAccepting();
  server.closeAll();
  await server.idle(2000);
  tmp.cleanup();
});

function body(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

/** Spawns `gostash connect`; returns handles to feed stdin and collect everything. */
function connect(args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawn([BIN, "connect", ...args], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...env } as Record<string, string>,
  });
  const killer = setTimeout(() => p.kill(9), 60_000);
  const outText = new Response(p.stdout).text();
  const errText = new Response(p.stderr).text();
  return {
    p,
    async write(s: string) {
      p.stdin.write(s);
      await p.stdin.flush();
    },
    async finish(): Promise<{ code: number; lines: string[]; stderr: string; killed: boolean }> {
      const [out, err, code] = await Promise.all([outText, errText, p.exited]);
      clearTimeout(killer);
      return { code, lines: out.split("\n").filter(Boolean), stderr: err, killed: p.signalCode === "SIGKILL" };
    },
  };
}

function parse(lines: string[]): Map<number, Response> {
  const m = new Map<number, Response>();
  for (const l of lines) {
    const r = JSON.parse(l) as Response;
    m.set(r.ID, r);
  }
  return m;
}

describe("gostash connect", () => {
  test("bridges a conversation with a 24 MiB put both ways, half-closes, exits 0", async () => {
    const c = connect([sock]);
    const a = randomID();
    const data = body(24 << 20, 5);
    await c.write(getLine(1, a));
    await c.write(putLines(2, a, data));
    await c.write(getLine(3, a) + closeLine(4));
    c.p.stdin.end();
    const res = await c.finish();
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.lines[0]).toBe(CAPABILITY_LINE.trim());
    const r = parse(res.lines);
    expect(r.get(1)!.Miss).toBe(true);
    expect(sha256hex(readFileSync(r.get(2)!.DiskPath!))).toBe(sha256hex(data));
    expect(r.get(3)!.Size).toBe(data.length);
    expect(r.get(4)).toEqual({ ID: 4 });
    expect(await server.idle(5000)).toBe(true);
    expect(metrics.get("connections_total")).toBe(1);
  });

  test("many responses while stdin stays open: nothing is lost", async () => {
    const c = connect([sock]);
    const ids = Array.from({ length: 2000 }, () => randomID());
    await c.write(ids.map((a, i) => putLines(i + 1, a, body(100, i))).join(""));
    await c.write(ids.map((a, i) => getLine(10_001 + i, a)).join("") + closeLine(99_999));
    c.p.stdin.end();
    const res = await c.finish();
    expect(res.code).toBe(0);
    const r = parse(res.lines);
    expect(r.size).toBe(1 + 2000 + 2000 + 1);
    for (let i = 0; i < 2000; i++) expect(r.get(10_001 + i)!.Size).toBe(100);
  });

  test("daemon unreachable: one line on stderr, and the local cache serves the conversation", async () => {
    const local = join(tmp.path, "fallback-cache");
    const c = connect([join(tmp.path, "nobody-here.sock")], { GOCACHE_DIR: local });
    const a = randomID();
    await c.write(getLine(1, a) + putLines(2, a, body(1000, 1)) + getLine(3, a) + closeLine(4));
    c.p.stdin.end();
    const res = await c.finish();
    expect(res.code).toBe(0);
    expect(res.lines[0]).toBe(CAPABILITY_LINE.trim());
    const r = parse(res.lines);
    expect(r.get(1)!.Miss).toBe(true);
    expect(r.get(2)!.DiskPath!.startsWith(local)).toBe(true);
    expect(r.get(3)!.Size).toBe(1000);
    expect(r.get(4)).toEqual({ ID: 4 });
    const errLines = res.stderr.trim().split("\n");
    expect(errLines.length).toBe(1);
    expect(errLines[0]).toContain("cannot reach the daemon");
    expect(errLines[0]).toContain(local);

    // Same over TCP to a closed port.
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    const c2 = connect([String(port)], { GOCACHE_DIR: local });
    await c2.write(getLine(1, a) + closeLine(2));
    c2.p.stdin.end();
    const res2 = await c2.finish();
    expect(res2.code).toBe(0);
    expect(parse(res2.lines).get(1)!.Size).toBe(1000);
    expect(res2.stderr).toContain(`127.0.0.1:${port}`);
  });

  test("the daemon going away mid-conversation: connect says so and exits 1 promptly", async () => {
    const c = connect([sock]);
    const a = randomID();
    await c.write(putLines(1, a, body(1000, 1)));
    // Wait until the daemon has answered, then cut every connection.
    for (let i = 0; i < 200 && metrics.get("puts") < 1; i++) await Bun.sleep(10);
    await Bun.sleep(50);
    server.closeAll();
    const res = await c.finish();
    expect(res.killed).toBe(false);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("the daemon at");
    expect(res.stderr).toContain("before the go command was done");
    // stdout held only protocol lines.
    for (const l of res.lines) JSON.parse(l);
  });

  test("connect without an address is a usage error; GOCACHE_PLUGIN supplies one", async () => {
    const c = connect([], { GOCACHE_PLUGIN: "" });
    c.p.stdin.end();
    const res = await c.finish();
    expect(res.code).toBe(2);
    expect(res.lines).toEqual([]);
    const c2 = connect([], { GOCACHE_PLUGIN: sock });
    await c2.write(closeLine(1));
    c2.p.stdin.end();
    const res2 = await c2.finish();
    expect(res2.code).toBe(0);
    expect(parse(res2.lines).get(1)).toEqual({ ID: 1 });
    expect(existsSync(sock)).toBe(true);
  });
});
