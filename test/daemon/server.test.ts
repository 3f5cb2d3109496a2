// The daemon's plugin socket, in-process: many conversations over one
// shared cache, and clients that misbehave.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CAPABILITY_LINE } from "../../src/cacheprog/protocol.ts";
import { startPluginServer, type PluginServer } from "../../src/daemon/server.ts";
import { createDiskStore } from "../../src/store/disk.ts";
import { createLocalCache } from "../../src/buildcache/local.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { tempDir } from "../helpers/env.ts";
import { closeLine, getLine, putLines, randomID, RawClient, sha256hex, type Addr } from "./helpers.ts";

let tmp: ReturnType<typeof tempDir>;
let server: PluginServer;
let metrics: Metrics;
let closes = 0;
/** close() calls of the per-connection handlers (one per go command, as the daemon's open.ts makes them). */
let commandCloses = 0;
let addr: Addr;

async function start(address: Parameters<typeof startPluginServer>[0]["address"]) {
  metrics = new Metrics();
  const disk = createDiskStore({ dir: join(tmp.path, "cache") });
  const local = createLocalCache(disk, metrics);
  closes = 0;
  const handler = { ...local, close: () => void closes++ };
  commandCloses = 0;
  const connectionHandler = () => ({ get: local.get, put: local.put, close: () => void commandCloses++ });
  server = await startPluginServer({ address, handler, connectionHandler, metrics, logger: createLogger() });
  addr = server.address.kind === "unix" ? { unix: server.address.path } : { hostname: server.address.hostname, port: server.address.port };
}

beforeEach(async () => {
  tmp = tempDir("gostash-server-");
  await start({ kind: "unix", path: join(tmp.path, "d.sock") });
});

afterEach(async () => {
  server.stopAccepting();
  server.closeAll();
  await server.idle(2000);
  tmp.cleanup();
});

function body(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe("plugin server", () => {
  test("capability line first, then put, get hit, close; socket closes after client EOF", async () => {
    const c = await RawClient.connect(addr);
    const action = randomID();
    const data = body(100_000, 7);
    await c.send(getLine(1, action) + putLines(2, action, data) + getLine(3, action) + closeLine(4));
    const [miss, put, hit, closed] = await Promise.all([c.response(1), c.response(2), c.response(3), c.response(4)]);
    expect(c.lines[0]).toBe(CAPABILITY_LINE.trim());
    expect(miss.Miss).toBe(true);
    expect(readFileSync(put.DiskPath!)).toEqual(Buffer.from(data));
    expect(hit.Size).toBe(data.length);
    expect(Buffer.from(hit.OutputID!, "base64").toString("hex")).toBe(sha256hex(data));
    expect(hit.DiskPath).toBe(put.DiskPath!);
    expect(closed).toEqual({ ID: 4 });
    // The shared cache is never closed by a client's close.
    expect(closes).toBe(0);
    expect(c.closed).toBe(false);
    c.halfClose();
    expect(await c.waitClosed()).toBe(true);
    expect(server.connections).toBe(0);
    expect(metrics.get("connections_total")).toBe(1);
  }, 60_000);

  test("24 concurrent clients share the cache: every put is visible to every other client", async () => {
    const N = 24;
    const actions = Array.from({ length: N }, () => randomID());
    const bodies = actions.map((_, i) => body(1000 + i * 5000, i));
    const clients = await Promise.all(actions.map(() => RawClient.connect(addr)));
    // Each client puts its own entry, and one entry of its neighbour (a race on the same key).
    await Promise.all(
      clients.map((c, i) => c.send(putLines(1, actions[i]!, bodies[i]!) + putLines(2, actions[(i + 1) % N]!, bodies[(i + 1) % N]!))),
    );
    await Promise.all(clients.flatMap((c) => [c.response(1), c.response(2)]));
    await Promise.all(clients.map((c) => c.send(actions.map((a, j) => getLine(10 + j, a)).join(""))));
    for (const c of clients) {
      for (let j = 0; j < N; j++) {
        const r = await c.response(10 + j);
        expect(r.Miss).toBeUndefined();
        expect(r.Size).toBe(bodies[j]!.length);
        expect(sha256hex(readFileSync(r.DiskPath!))).toBe(sha256hex(bodies[j]!));
      }
    }
    for (const c of clients) c.halfClose();
    expect((await Promise.all(clients.map((c) => c.waitClosed()))).every(Boolean)).toBe(true);
    expect(metrics.get("puts")).toBe(2 * N);
  }, 60_000);

  test("a client sending garbage is cut off; others keep being served", async () => {
    const good = await RawClient.connect(addr);
    const bad = await RawClient.connect(addr);
    await bad.send("this is not json\n\n");
    expect(await bad.waitClosed()).toBe(true);
    const bad2 = await RawClient.connect(addr);
    // A body that is not a JSON string.
    await bad2.send(`{"ID":1,"Command":"put","ActionID":"${Buffer.alloc(32, 1).toString("base64")}","OutputID":"${Buffer.alloc(32, 2).toString("base64")}","BodySize":10}\n\n<garbage>\n`);
    expect(await bad2.waitClosed()).toBe(true);
    expect(metrics.get("connection_errors")).toBe(2);

    const a = randomID();
    await good.send(putLines(1, a, body(5000, 1)) + getLine(2, a));
    expect((await good.response(2)).Size).toBe(5000);
    good.halfClose();
    expect(await good.waitClosed()).toBe(true);
  }, 60_000);

  test("a client hanging up mid-put leaves no entry and no temp file", async () => {
    const c = await RawClient.connect(addr);
    const a = randomID();
    const data = body(3 << 20, 3);
    const full = putLines(1, a, data);
    await c.send(full.slice(0, full.length >> 1));
    await Bun.sleep(50);
    c.kill();
    expect(await c.waitClosed()).toBe(true);
    expect(await server.idle(5000)).toBe(true);
    await Bun.sleep(20);
    expect(commandCloses).toBe(1); // the command's handler closed all the same: its uploads flush, its record ends
    const temps: string[] = [];
    const dir = join(tmp.path, "cache");
    for (const sub of existsSync(dir) ? readdirSync(dir) : []) {
      if (!statSync(join(dir, sub)).isDirectory()) continue;
      for (const f of readdirSync(join(dir, sub))) if (f.endsWith(".tmp")) temps.push(f);
    }
    expect(temps).toEqual([]);
    const c2 = await RawClient.connect(addr);
    await c2.send(getLine(1, a));
    expect((await c2.response(1)).Miss).toBe(true);
    c2.halfClose();
    await c2.waitClosed();

    // Half-close in the middle of a body: the same, and the socket is closed.
    const c3 = await RawClient.connect(addr);
    await c3.send(full.slice(0, 1000));
    c3.halfClose();
    expect(await c3.waitClosed()).toBe(true);
    expect(metrics.get("connections_aborted")).toBeGreaterThanOrEqual(1);
    expect(commandCloses).toBe(3);
  }, 60_000);

  test("a 40 MiB put streams through with backpressure both ways", async () => {
    const c = await RawClient.connect(addr);
    const a = randomID();
    const data = body(40 << 20, 9);
    await c.send(putLines(1, a, data));
    const r = await c.response(1, 60_000);
    expect(statSync(r.DiskPath!).size).toBe(data.length);
    expect(sha256hex(readFileSync(r.DiskPath!))).toBe(sha256hex(data));
    c.halfClose();
    expect(await c.waitClosed()).toBe(true);
  }, 60_000);

  test("the Unix socket is owner-only, a stale socket file is replaced, a live one refused", async () => {
    const path = join(tmp.path, "d.sock");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    // A second daemon on the same live path is refused.
    await expect(
      startPluginServer({ address: { kind: "unix", path }, handler: createLocalCache(createDiskStore({ dir: join(tmp.path, "c2") }), new Metrics()), metrics: new Metrics(), logger: createLogger() }),
    ).rejects.toThrow(/already serving/);
    // A stale socket (its daemon was killed: nobody listens) is removed and replaced.
    const stale = join(tmp.path, "stale.sock");
    const dead = Bun.spawn([process.execPath, "-e", `Bun.listen({ unix: ${JSON.stringify(stale)}, socket: { data() {} } }); console.log("up")`], { stdout: "pipe" });
    await dead.stdout.getReader().read();
    dead.kill("SIGKILL");
    await dead.exited;
    expect(statSync(stale).isSocket()).toBe(true);
    const s2 = await startPluginServer({
      address: { kind: "unix", path: stale },
      handler: createLocalCache(createDiskStore({ dir: join(tmp.path, "c3") }), new Metrics()),
      metrics: new Metrics(),
      logger: createLogger(),
    });
    expect(statSync(stale).isSocket()).toBe(true);
    expect(statSync(stale).mode & 0o777).toBe(0o600);
    s2.stopAccepting();
    expect(existsSync(stale)).toBe(false);
    // A file or a directory at the path (a mistyped --plugin) is never removed: an error names it.
    const mine = join(tmp.path, "notes.txt");
    writeFileSync(mine, "keep me");
    for (const path of [mine, tmp.path]) {
      await expect(
        startPluginServer({ address: { kind: "unix", path }, handler: createLocalCache(createDiskStore({ dir: join(tmp.path, "c4") }), new Metrics()), metrics: new Metrics(), logger: createLogger() }),
      ).rejects.toThrow(`config: --plugin: ${path} exists and is not a socket`);
    }
    expect(readFileSync(mine, "utf8")).toBe("keep me");
  }, 60_000);

  test("TCP on 127.0.0.1 with port 0 reports the real port; stopAccepting refuses new clients", async () => {
    server.stopAccepting();
    await start({ kind: "tcp", hostname: "127.0.0.1", port: 0 });
    expect(server.address.kind === "tcp" && server.address.port > 0).toBe(true);
    const c = await RawClient.connect(addr);
    const a = randomID();
    await c.send(putLines(1, a, body(10, 1)) + getLine(2, a));
    expect((await c.response(2)).Size).toBe(10);
    server.stopAccepting();
    await expect(RawClient.connect(addr)).rejects.toThrow();
    // The open conversation goes on after the listener stopped.
    await c.send(getLine(3, a));
    expect((await c.response(3)).Size).toBe(10);
    c.halfClose();
    expect(await c.waitClosed()).toBe(true);
  }, 60_000);
});
