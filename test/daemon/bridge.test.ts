// `gostash connect` (the compiled binary) between a scripted client on its
// stdin/stdout and a daemon socket served in-process by the test.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CAPABILITY_LINE } from "../../src/cacheprog/protocol.ts";
import { startPluginServer, type PluginServer } from "../../src/daemon/server.ts";
import { createDiskStore } from "../../src/store/disk.ts";
import { createLocalCache } from "../../src/buildcache/local.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { tempDir } from "../helpers/env.ts";
import { body, closeLine, getLine, putLines, randomID, sha256hex, spawnConnect as connect, type Response } from "./helpers.ts";


let tmp: ReturnType<typeof tempDir>;
let server: PluginServer;
let sock: string;
let metrics: Metrics;
/** While set, the daemon's gets wait (never answer): requests stay pending. */
let holdGets = false;
let heldGets = 0;
let daemonCache: string;

beforeEach(async () => {
  tmp = tempDir("gostash-bridge-");
  sock = join(tmp.path, "d.sock");
  daemonCache = join(tmp.path, "daemon-cache");
  metrics = new Metrics();
  holdGets = false;
  heldGets = 0;
  const local = createLocalCache(createDiskStore({ dir: daemonCache }), metrics);
  server = await startPluginServer({
    address: { kind: "unix", path: sock },
    handler: {
      ...local,
      get(a) {
        if (!holdGets) return local.get(a);
        heldGets++;
        return new Promise<never>(() => {});
      },
    },
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
  }, 60_000);

  test("over TCP (go-cache-plugin style: connect PORT), a conversation goes through the same way", async () => {
    const m = new Metrics();
    const tcp = await startPluginServer({
      address: { kind: "tcp", hostname: "127.0.0.1", port: 0 },
      handler: createLocalCache(createDiskStore({ dir: join(tmp.path, "tcp-cache") }), m),
      metrics: m,
      logger: createLogger(),
    });
    try {
      const port = tcp.address.kind === "tcp" ? tcp.address.port : 0;
      const c = connect([String(port)]);
      const a = randomID();
      const data = body(3 << 20, 3);
      await c.write(getLine(1, a) + putLines(2, a, data) + getLine(3, a) + closeLine(4));
      const res = await c.finish();
      expect(res.stderr).toBe("");
      expect(res.code).toBe(0);
      expect(res.lines[0]).toBe(CAPABILITY_LINE.trim());
      expect(res.lines.filter((l) => l.startsWith('{"ID":0,')).length).toBe(1);
      const r = parse(res.lines);
      expect(r.get(1)!.Miss).toBe(true);
      expect(sha256hex(readFileSync(r.get(2)!.DiskPath!))).toBe(sha256hex(data));
      expect(r.get(3)!.Size).toBe(data.length);
      expect(r.get(4)).toEqual({ ID: 4 });
      expect(m.get("connections_total")).toBe(1);
    } finally {
      tcp.stopAccepting();
      tcp.closeAll();
    }
  }, 60_000);

  test("many responses while stdin stays open: nothing is lost", async () => {
    const c = connect([sock]);
    const ids = Array.from({ length: 2000 }, () => randomID());
    await c.write(ids.map((a, i) => putLines(i + 1, a, body(100, i))).join(""));
    await c.write(ids.map((a, i) => getLine(10_001 + i, a)).join("") + closeLine(99_999));
    const res = await c.finish();
    expect(res.code).toBe(0);
    const r = parse(res.lines);
    expect(r.size).toBe(1 + 2000 + 2000 + 1);
    for (let i = 0; i < 2000; i++) expect(r.get(10_001 + i)!.Size).toBe(100);
  }, 60_000);

  test("stdout closes once close is answered, before go closes stdin (go waits for that EOF, not the exit)", async () => {
    const c = connect([sock]);
    const a = randomID();
    await c.write(putLines(1, a, body(10, 1)) + getLine(2, a) + closeLine(3));
    // stdin stays open: before, the bridge kept stdout open until stdin ended and the daemon hung up.
    const out = await Promise.race([c.stdoutClosed.then(() => c.lines.join("\n")), Bun.sleep(10_000).then(() => null)]);
    expect(out).not.toBeNull();
    const r = parse(out!.split("\n").filter(Boolean));
    expect([...r.keys()].sort()).toEqual([0, 1, 2, 3]);
    expect(r.get(2)!.Size).toBe(10);
    expect((await c.finish()).code).toBe(0);
  }, 30_000);

  test("daemon unreachable: one line on stderr, and the local cache serves the conversation", async () => {
    const local = join(tmp.path, "fallback-cache");
    const c = connect([join(tmp.path, "nobody-here.sock")], { GOCACHE_DIR: local });
    const a = randomID();
    await c.write(getLine(1, a) + putLines(2, a, body(1000, 1)) + getLine(3, a) + closeLine(4));
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
  }, 60_000);

  test("the daemon going away mid-conversation: connect takes over from the local cache, pending requests answered", async () => {
    // The fallback cache is the daemon's own (the usual set-up: both default to Go's cache).
    const c = connect([sock], { GOCACHE_DIR: daemonCache });
    const a = randomID();
    const b = randomID();
    await c.write(putLines(1, a, body(1000, 1)));
    for (let i = 0; i < 500 && metrics.get("puts") < 1; i++) await Bun.sleep(10);
    // Two gets the daemon never answers, then half a put body in flight.
    holdGets = true;
    await c.write(getLine(2, a) + getLine(3, b));
    for (let i = 0; i < 500 && heldGets < 2; i++) await Bun.sleep(10);
    const big = putLines(4, b, body(300_000, 4));
    await c.write(big.slice(0, 150_000));
    await Bun.sleep(50);
    // Gone: no longer accepting (a daemon that still accepts is dialled again; see below).
    server.stopAccepting();
    server.closeAll();
    await Bun.sleep(50);
    await c.write(big.slice(150_000));
    await c.write(putLines(5, b, body(2000, 5)) + getLine(6, b) + getLine(7, a) + closeLine(8));
    const res = await c.finish();
    if (res.code !== 0) console.error(res.stderr, res.lines);
    expect(res.killed).toBe(false);
    expect(res.code).toBe(0);
    const r = parse(res.lines); // every line is JSON
    expect(res.lines[0]).toBe(CAPABILITY_LINE.trim());
    expect(res.lines.filter((l) => l.startsWith('{"ID":0,')).length).toBe(1);
    expect(r.get(1)!.DiskPath).toBeString();
    expect(r.get(2)!.Size).toBe(1000); // pending get, answered from the local cache
    expect(r.get(3)!.Miss).toBe(true);
    // The put whose body was cut by the switch is replayed into the local cache...
    expect(readFileSync(r.get(4)!.DiskPath!)).toEqual(Buffer.from(body(300_000, 4)));
    expect(r.get(5)!.DiskPath!.startsWith(daemonCache)).toBe(true);
    // ...and the later put of the same action wins.
    expect(r.get(6)!.Size).toBe(2000);
    expect(r.get(7)!.Size).toBe(1000);
    expect(r.get(8)).toEqual({ ID: 8 });
    expect(res.lines.length).toBe(9);
    const errLines = res.stderr.trim().split("\n");
    expect(errLines.length).toBe(1);
    expect(errLines[0]).toContain("finishing this build from the local cache");
  }, 60_000);

  test("a put too large to keep for a replay, cut by the switch, gets an error; the rest goes on", async () => {
    const c = connect([sock], { GOCACHE_DIR: daemonCache });
    const a = randomID();
    const big = putLines(1, a, body((32 << 20) + 10, 1));
    await c.write(big.slice(0, 1 << 20));
    for (let i = 0; i < 200 && server.connections < 1; i++) await Bun.sleep(10);
    await Bun.sleep(50);
    server.closeAll();
    await Bun.sleep(50);
    await c.write(big.slice(1 << 20));
    await c.write(putLines(2, a, body(10, 2)) + getLine(3, a) + closeLine(4));
    const res = await c.finish();
    expect(res.code).toBe(0);
    const r = parse(res.lines);
    expect(r.get(1)!.Err).toContain("daemon went away");
    expect(r.get(3)!.Size).toBe(10);
    expect(r.get(4)).toEqual({ ID: 4 });
  }, 60_000);

  test("the daemon going away between requests, with stdin then closed: exits 0, nothing pending", async () => {
    const c = connect([sock]);
    await c.write(getLine(1, randomID()));
    for (let i = 0; i < 500 && metrics.get("gets") < 1; i++) await Bun.sleep(10);
    await Bun.sleep(30);
    server.closeAll();
    await Bun.sleep(30);
    await c.write(closeLine(2));
    const res = await c.finish();
    expect(res.code).toBe(0);
    const r = parse(res.lines);
    expect(r.get(1)!.Miss).toBe(true);
    expect(r.get(2)).toEqual({ ID: 2 });
  }, 60_000);

  test("connect without an address is a usage error; GOCACHE_PLUGIN supplies one", async () => {
    const c = connect([], { GOCACHE_PLUGIN: "" });
    const res = await c.finish();
    expect(res.code).toBe(2);
    // An argument error stops connect before the capability line: stdout stays empty (issue #15, item 1).
    expect(res.lines).toEqual([]);
    const c2 = connect([], { GOCACHE_PLUGIN: sock });
    await c2.write(closeLine(1));
    c2.p.stdin.end();
    const res2 = await c2.finish();
    expect(res2.code).toBe(0);
    expect(parse(res2.lines).get(1)).toEqual({ ID: 1 });
    expect(existsSync(sock)).toBe(true);
  }, 60_000);
});
