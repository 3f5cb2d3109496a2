// Offline mode (--offline): answers come from the store only; the upstream
// and the checksum database are never contacted (counted). First the
// handler in process, then the real daemon with the real go command after a
// warm-up run.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createModProxy } from "../../src/modproxy/serve/proxy.ts";
import { compareSemver, latestOf } from "../../src/modproxy/module/semver.ts";
import { parseUpstreams } from "../../src/modproxy/upstream/fetch.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { startDaemon, type Daemon } from "../daemon/helpers.ts";
import { tempDir } from "../helpers/env.ts";
import { go, goEnv } from "../helpers/go.ts";
import { startSumdb, startUpstream, writeApp, writeModule, writeTestModules, type Sumdb, type Upstream } from "./helpers.ts";

const GO_TIMEOUT = 240_000;

describe("semver order", () => {
  test("compareSemver and latestOf", () => {
    const vs = ["v1.10.0", "v1.2.0", "v1.2.0-rc.1", "v1.2.0-rc.10", "v1.2.0-rc.2", "v0.9.0", "v2.0.0+incompatible", "v1.2.0-alpha"];
    expect([...vs].sort(compareSemver)).toEqual(["v0.9.0", "v1.2.0-alpha", "v1.2.0-rc.1", "v1.2.0-rc.2", "v1.2.0-rc.10", "v1.2.0", "v1.10.0", "v2.0.0+incompatible"]);
    expect(latestOf(["v1.0.0", "v1.1.0-rc.1"])).toBe("v1.0.0");
    expect(latestOf(["v1.0.0-rc.1", "v1.1.0-beta"])).toBe("v1.1.0-beta");
    expect(latestOf([])).toBeNull();
  });
});

describe("offline handler", () => {
  let t: ReturnType<typeof tempDir>;
  let up: Upstream;
  let srv: ReturnType<typeof Bun.serve>;
  let base: string;
  beforeAll(() => {
    t = tempDir("gostash-offline-unit-");
    const store = join(t.path, "store");
    writeTestModules(store);
    writeModule(store, { path: "example.com/lib", version: "v1.2.0-rc.1", files: { "lib.go": "package lib\n" } });
    writeModule(store, { path: "example.com/lib", version: "v0.0.0-20240102030405-abcdefabcdef", files: { "lib.go": "package lib\n" } });
    writeModule(store, { path: "example.com/pre", version: "v0.1.0-beta.1", files: { "p.go": "package pre\n" } });
    writeModule(store, { path: "example.com/pre", version: "v0.1.0-beta.2", files: { "p.go": "package pre\n" } });
    // A stale stored list that must not be trusted: the list is computed.
    writeFileSync(join(store, "example.com/lib/@v/list"), "v9.9.9\n");
    mkdirSync(join(store, "sumdb/sum.test/lookup/example.com"), { recursive: true });
    writeFileSync(join(store, "sumdb/sum.test/lookup/example.com/lib@v1.1.0"), "lookup answer\n");
    mkdirSync(join(store, "sumdb/sum.test/tile/8/0/000.p"), { recursive: true });
    writeFileSync(join(store, "sumdb/sum.test/tile/8/0/000.p/3"), new Uint8Array(96).fill(7));
    const upDir = join(t.path, "up");
    writeTestModules(upDir);
    writeModule(upDir, { path: "example.com/only-upstream", version: "v1.0.0", files: { "o.go": "package o\n" } });
    up = startUpstream(upDir);
    const p = createModProxy({
      dir: store,
      upstreams: parseUpstreams(up.url),
      sumdbs: [{ name: "sum.test", url: up.url }],
      listTtlMs: 0,
      swrMs: 0,
      notFoundTtlMs: 0,
      timeoutMs: 5_000,
      retries: 0,
      metrics: new Metrics(),
      logger: createLogger({}),
      offline: true,
    });
    srv = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: p.fetch });
    base = `http://127.0.0.1:${srv.port}/mod`;
  });
  afterAll(() => {
    srv?.stop(true);
    up?.stop();
    t?.cleanup();
  });

  const get = async (p: string) => {
    const r = await fetch(`${base}/${p}`);
    return { status: r.status, text: await r.text() };
  };

  test("list and @latest are computed from what is stored; unknown modules and queries get 404; no upstream request", async () => {
    expect(await get("example.com/lib/@v/list")).toEqual({ status: 200, text: "v1.0.0\nv1.1.0\nv1.2.0-rc.1\n" });
    const latest = await get("example.com/lib/@latest");
    expect(latest.status).toBe(200);
    expect(JSON.parse(latest.text).Version).toBe("v1.1.0");
    expect(JSON.parse(latest.text).Time).toBe("2024-01-02T03:04:05Z");
    expect(JSON.parse((await get("example.com/pre/@latest")).text).Version).toBe("v0.1.0-beta.2");
    expect((await get("example.com/!upper/!case/@v/list")).text).toBe("v1.0.0\n");
    expect((await get("example.com/lib/@v/v1.1.0.mod")).status).toBe(200);
    expect((await get("example.com/lib/@v/v1.1.0.zip")).status).toBe(200);
    for (const p of [
      "example.com/only-upstream/@v/list",
      "example.com/only-upstream/@latest",
      "example.com/only-upstream/@v/v1.0.0.info",
      "example.com/only-upstream/@v/v1.0.0.mod",
      "example.com/only-upstream/@v/v1.0.0.zip",
      "example.com/lib/@v/master.info",
      "example.com/lib/@v/v1.3.0.zip",
      "sumdb/sum.test/lookup/example.com/dep@v1.0.0",
      "sumdb/sum.test/latest",
      "sumdb/sum.test/tile/8/0/001",
    ]) {
      expect((await get(p)).status, p).toBe(404);
    }
    expect(await get("sumdb/sum.test/lookup/example.com/lib@v1.1.0")).toEqual({ status: 200, text: "lookup answer\n" });
    expect((await get("sumdb/sum.test/supported")).status).toBe(200);
    // A narrower partial tile is served from a wider stored one.
    const narrow = await fetch(`${base}/sumdb/sum.test/tile/8/0/000.p/2`);
    expect(narrow.status).toBe(200);
    expect((await narrow.arrayBuffer()).byteLength).toBe(64);
    expect(up.hits.size).toBe(0);
  });
});

describe("go command against gostash serve --offline", () => {
  let root: ReturnType<typeof tempDir>;
  let up: Upstream;
  let db: Sumdb;
  let daemon: Daemon | null = null;

  beforeAll(async () => {
    root = tempDir("gostash-offline-e2e-");
    const upDir = join(root.path, "up");
    writeTestModules(upDir);
    up = startUpstream(upDir);
    db = await startSumdb(upDir);
  }, 240_000);
  afterAll(async () => {
    await daemon?.stop();
    up?.stop();
    db?.stop();
    root?.cleanup();
  });

  const flags = (offline: boolean) => [
    "--plugin",
    join(root.path, offline ? "p2.sock" : "p1.sock"),
    "--http",
    "127.0.0.1:0",
    "--cache-dir",
    join(root.path, "cache"),
    "--modproxy",
    "--upstream",
    up.url,
    "--sumdb",
    `${db.name}=${db.url}`,
    "--upstream-timeout",
    "5s",
    "--upstream-retries",
    "0",
    ...(offline ? ["--offline"] : []),
  ];
  const env = (proxy: string, home: string) =>
    goEnv({
      gocache: join(root.path, "gocache"),
      home,
      extra: { GOPROXY: `${proxy}/mod`, GOSUMDB: `${db.vkey} ${proxy}/mod/sumdb/${db.name}`, GONOSUMDB: "", GOPRIVATE: "", GONOPROXY: "", GOFLAGS: "-mod=mod" },
    });
  const goOK = async (args: string[], cwd: string, e: Record<string, string | undefined>) => {
    const r = await go(args, cwd, e, GO_TIMEOUT);
    if (r.code !== 0) throw new Error(`go ${args.join(" ")} failed (${r.code}):\n${r.stderr}\n--- daemon:\n${daemon?.stderr().slice(-3000)}`);
    return r.stdout;
  };

  test("after a warm-up run, go mod download, go list -m -versions and go build work with no upstream traffic", async () => {
    daemon = await startDaemon(flags(false));
    const warm = join(root.path, "app-warm");
    writeApp(warm);
    await goOK(["get", "example.com/lib@v1.1.0", "example.com/Upper/Case@v1.0.0"], warm, env(daemon.http!, join(root.path, "home-warm")));
    await goOK(["list", "-m", "-versions", "example.com/lib"], warm, env(daemon.http!, join(root.path, "home-warm")));
    await goOK(["mod", "download", "example.com/lib@v1.0.0"], warm, env(daemon.http!, join(root.path, "home-warm")));
    expect(await daemon.stop()).toBe(0);

    const upBefore = [...up.hits.values()].reduce((a, b) => a + b, 0);
    const dbBefore = Object.values(await db.counts()).reduce((a, b) => a + b, 0);
    daemon = await startDaemon(flags(true), { GOSTASH_OFFLINE: "" });
    const app = join(root.path, "app-off");
    writeApp(app); // no go.sum: every checksum is looked up through the (offline) sumdb proxy
    const e = env(daemon.http!, join(root.path, "home-off"));
    await goOK(["get", "example.com/lib@v1.1.0", "example.com/Upper/Case@v1.0.0"], app, e);
    await goOK(["mod", "download", "all"], app, e);
    expect((await goOK(["list", "-m", "-versions", "example.com/lib"], app, e)).trim()).toBe("example.com/lib v1.0.0 v1.1.0");
    expect(JSON.parse(await goOK(["list", "-m", "-json", "example.com/lib@latest"], app, e)).Version).toBe("v1.1.0");
    await goOK(["build", "-o", "app", "."], app, e);
    expect(Bun.spawnSync([join(app, "app")], { timeout: 30_000 }).stdout.toString().trim()).toBe("42 Upper/Case");
    // A module never fetched: 404, so the go command reports it missing (no upstream asked).
    const miss = await go(["mod", "download", "example.com/never@v1.0.0"], app, e, GO_TIMEOUT);
    expect(miss.code).not.toBe(0);
    expect(miss.stderr).toContain("404");

    expect([...up.hits.values()].reduce((a, b) => a + b, 0)).toBe(upBefore);
    expect(Object.values(await db.counts()).reduce((a, b) => a + b, 0)).toBe(dbBefore);

    // And with the upstream and the database really gone.
    up.stop();
    db.stop();
    const app2 = join(root.path, "app-off2");
    writeApp(app2);
    const e2 = env(daemon.http!, join(root.path, "home-off2"));
    await goOK(["mod", "download", "-json", "example.com/lib@v1.1.0", "example.com/dep@v1.0.0"], app2, e2);
    expect((await goOK(["list", "-m", "-versions", "example.com/lib"], app2, e2)).trim()).toBe("example.com/lib v1.0.0 v1.1.0");
  }, 600_000);
});
