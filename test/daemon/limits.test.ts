// The plugin socket's limits, served in-process: --max-inflight
// (backpressure), --idle-timeout, --max-connections; and what the compiled
// `gostash connect` does about each (dial again after an idle close, replay
// what a hang-up cut off, one warning and the local cache when refused).
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TokenChecker } from "../../src/auth/token.ts";
import type { Hit } from "../../src/cacheprog/protocol.ts";
import type { CacheHandler } from "../../src/cacheprog/session.ts";
import { startPluginServer, type ConnectionLimits, type PluginServer } from "../../src/daemon/server.ts";
import { createDiskStore } from "../../src/store/disk.ts";
import { createLocalCache } from "../../src/buildcache/local.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { tempDir } from "../helpers/env.ts";
import { body, closeLine, getLine, putLines, randomID, RawClient, sha256hex, spawnConnect as connect, until, type Addr, type Response } from "./helpers.ts";

let tmp: ReturnType<typeof tempDir>;
let server: PluginServer | null;
let metrics: Metrics;
let sock: string;
let addr: Addr;
let daemonCache: string;
/** Gets held by the handler (while holding): resolve them to answer. */
let held: { action: string; resolve: (h: Hit | null) => void }[];
let holding: boolean;
/** Most gets the handler had pending at once. */
let maxPending: number;

async function start(limits: ConnectionLimits, tokens?: TokenChecker): Promise<void> {
  metrics = new Metrics();
  const local = createLocalCache(createDiskStore({ dir: daemonCache }), metrics);
  const handler: CacheHandler = {
    ...local,
    get(a) {
      if (!holding) return local.get(a);
      return new Promise<Hit | null>((resolve) => {
        held.push({ action: a, resolve });
        maxPending = Math.max(maxPending, held.length);
      });
    },
  };
  server = await startPluginServer({ address: { kind: "unix", path: sock }, handler, metrics, logger: createLogger(), limits, tokens });
  addr = { unix: sock };
}

beforeEach(() => {
  tmp = tempDir("gostash-limits-");
  sock = join(tmp.path, "d.sock");
  daemonCache = join(tmp.path, "daemon-cache");
  held = [];
  holding = false;
  maxPending = 0;
  server = null;
});

afterEach(async () => {
  if (server) {
    server.stopAccepting();
    server.closeAll();
    await server.idle(2000);
  }
  tmp.cleanup();
});

describe("--max-inflight", () => {
  test("a connection with that many answers pending is not read until they go out; every request is still answered, in sync", async () => {
    await start({ maxInflight: 4 });
    holding = true;
    const c = await RawClient.connect(addr);
    const actions = Array.from({ length: 40 }, () => randomID());
    // Gets, with a put (a body) in the middle of them, all in one write.
    const data = body(200_000, 3);
    let reqs = "";
    actions.forEach((a, i) => {
      reqs += getLine(i + 1, a);
      if (i === 10) reqs += putLines(100, a, data);
    });
    await c.send(reqs + closeLine(200));
    // Answer the held gets as they come, a few at a time, until all 40 were asked.
    let answered = 0;
    while (answered < actions.length) {
      await until(() => held.length > 0, "a held get");
      const batch = held.splice(0, 3);
      for (const h of batch) h.resolve(null);
      answered += batch.length;
    }
    for (let i = 1; i <= actions.length; i++) expect((await c.response(i)).Miss).toBe(true);
    expect(readFileSync((await c.response(100)).DiskPath!)).toEqual(Buffer.from(data));
    expect(await c.response(200)).toEqual({ ID: 200 });
    expect(maxPending).toBe(4);
    expect(metrics.get("inflight_waits")).toBeGreaterThan(0);
    expect(metrics.get("errors") + metrics.get("connection_errors")).toBe(0);
    c.halfClose();
    expect(await c.waitClosed()).toBe(true);
  }, 60_000);

  test("EOF while input is held: the held requests are still answered before the socket closes", async () => {
    await start({ maxInflight: 2 });
    holding = true;
    const c = await RawClient.connect(addr);
    await c.send(Array.from({ length: 10 }, (_, i) => getLine(i + 1, randomID())).join(""));
    c.halfClose();
    for (let n = 0; n < 10; ) {
      await until(() => held.length > 0, "a held get");
      held.shift()!.resolve(null);
      n++;
    }
    for (let i = 1; i <= 10; i++) expect((await c.response(i)).Miss).toBe(true);
    expect(await c.waitClosed()).toBe(true);
    expect(maxPending).toBe(2);
  }, 60_000);
});

describe("--idle-timeout", () => {
  test("a raw connection that says nothing is closed and counted; one with a get pending is not", async () => {
    await start({ idleTimeoutMs: 300 });
    holding = true;
    const busy = await RawClient.connect(addr);
    await busy.send(getLine(1, randomID()));
    await until(() => held.length === 1, "the held get");
    const quiet = await RawClient.connect(addr);
    expect(await quiet.waitClosed(20_000)).toBe(true);
    expect(metrics.get("connections_idle_closed")).toBe(1);
    // Owed an answer: still open well past the timeout, and answered.
    expect(busy.closed).toBe(false);
    held[0]!.resolve(null);
    expect((await busy.response(1)).Miss).toBe(true);
    // ...and closed once idle again.
    expect(await busy.waitClosed(20_000)).toBe(true);
    expect(metrics.get("connections_idle_closed")).toBe(2);
  }, 60_000);

  test("connect after an idle close: dials again on the next request, silently; nothing lost", async () => {
    await start({ idleTimeoutMs: 300 });
    const c = connect([sock]);
    const a = randomID();
    const data = body(50_000, 1);
    await c.write(putLines(1, a, data));
    await c.answered(1);
    await until(() => metrics.get("connections_idle_closed") === 1, "the idle close");
    await until(() => server!.connections === 0, "the connection to go");
    await c.write(getLine(2, a) + putLines(3, randomID(), body(70_000, 2)) + closeLine(4));
    await c.answered(4);
    const res = await c.finish();
    expect(res.code).toBe(0);
    expect(res.stderr).toBe("");
    expect(c.answers.get(2)!.Size).toBe(data.length);
    expect(c.answers.get(3)!.DiskPath!.startsWith(daemonCache)).toBe(true);
    expect(c.answers.get(4)).toEqual({ ID: 4 });
    expect(res.lines.filter((l) => l.startsWith('{"ID":0,')).length).toBe(1);
    expect(metrics.get("connections_total")).toBe(2);
  }, 60_000);

  test("with a token: the dial after an idle close authenticates again", async () => {
    await start({ idleTimeoutMs: 300 }, new TokenChecker({ token: "s3cret-token" }));
    const c = connect([sock], { GOSTASH_TOKEN: "s3cret-token" });
    const a = randomID();
    await c.write(putLines(1, a, body(1000, 1)));
    await c.answered(1);
    await until(() => metrics.get("connections_idle_closed") === 1 && server!.connections === 0, "the idle close");
    await c.write(getLine(2, a) + closeLine(3));
    await c.answered(3);
    const res = await c.finish();
    expect(res.code).toBe(0);
    expect(res.stderr).toBe("");
    expect(c.answers.get(2)!.Size).toBe(1000);
    expect(metrics.get("connections_total")).toBe(2);
    expect(metrics.get("auth_refused")).toBe(0);
  }, 60_000);
});

describe("a daemon that hangs up but still accepts", () => {
  test("connect dials again and replays the unanswered requests (a get and a half-sent put); no takeover", async () => {
    await start({});
    const c = connect([sock], { GOCACHE_DIR: join(tmp.path, "fallback") });
    const a = randomID();
    await c.write(putLines(1, a, body(1000, 1)));
    await c.answered(1);
    holding = true;
    await c.write(getLine(2, a));
    await until(() => held.length === 1, "the held get");
    const big = putLines(3, randomID(), body(300_000, 3));
    await c.write(big.slice(0, 150_000));
    await until(() => metrics.get("puts") === 1 && server!.connections === 1, "the put to start");
    holding = false;
    server!.closeAll();
    await c.write(big.slice(150_000) + getLine(4, a) + closeLine(5));
    await c.answered(5);
    const res = await c.finish();
    expect(res.code).toBe(0);
    expect(res.stderr).toBe("");
    expect(c.answers.get(2)!.Size).toBe(1000);
    const put = c.answers.get(3)!;
    expect(put.DiskPath!.startsWith(daemonCache)).toBe(true);
    expect(sha256hex(readFileSync(put.DiskPath!))).toBe(sha256hex(body(300_000, 3)));
    expect(c.answers.get(4)!.Size).toBe(1000);
    expect(res.lines.length).toBe(6); // capability + 5 answers, none twice
    expect(metrics.get("connections_total")).toBe(2);
  }, 60_000);
});

describe("--max-connections", () => {
  test("one over the limit gets one GOSTASH-ERROR busy line naming the flag, and is counted", async () => {
    await start({ maxConnections: 1 });
    const first = await RawClient.connect(addr);
    await first.send(getLine(1, randomID()));
    expect((await first.response(1)).Miss).toBe(true);
    let got = "";
    let closed!: () => void;
    const gone = new Promise<void>((r) => (closed = r));
    await Bun.connect({
      unix: sock,
      socket: {
        data(_s, d) {
          got += d.toString();
        },
        close() {
          closed();
        },
      },
    });
    await gone;
    expect(got).toMatch(/^GOSTASH-ERROR busy: too many connections .*--max-connections.*\n$/);
    expect(metrics.get("connections_refused")).toBe(1);
    expect(server!.connections).toBe(1);
    // The slot frees up when the first client leaves.
    first.halfClose();
    expect(await first.waitClosed()).toBe(true);
    const again = await RawClient.connect(addr);
    await again.send(getLine(1, randomID()));
    expect((await again.response(1)).Miss).toBe(true);
    again.kill();
  }, 60_000);

  test("connect refused as busy: one warning, the conversation is served from the local cache", async () => {
    await start({ maxConnections: 1 });
    const holder = await RawClient.connect(addr);
    const fallback = join(tmp.path, "fallback");
    const c = connect([sock], { GOCACHE_DIR: fallback });
    const a = randomID();
    await c.write(getLine(1, a) + putLines(2, a, body(5000, 2)) + getLine(3, a) + closeLine(4));
    await c.answered(4);
    const res = await c.finish();
    expect(res.code).toBe(0);
    expect(c.answers.get(1)!.Miss).toBe(true);
    expect(c.answers.get(2)!.DiskPath!.startsWith(fallback)).toBe(true);
    expect(c.answers.get(3)!.Size).toBe(5000);
    const warnings = res.stderr.trim().split("\n");
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toContain("busy: too many connections");
    expect(warnings[0]).toContain("--max-connections");
    expect(warnings[0]).toContain(`serving this build from the local cache ${fallback}`);
    expect(metrics.get("connections_refused")).toBe(1);
    holder.kill();
  }, 60_000);
});
