// The module proxy end to end: the real `gostash serve --modproxy` binary,
// the real go command, a local upstream serving modules made by the test,
// and a local checksum database signed with a test key
// (test/fixtures/sumdb). Then the same with the upstream and the database
// stopped (served from the cache), the cache directory used directly as
// GOPROXY=file://..., and — when reachable — the real proxy.golang.org.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/env.ts";
import { go, goEnv } from "../helpers/go.ts";
import { startDaemon, type Daemon } from "../daemon/helpers.ts";
import { GO_TIMEOUT, goOK, modproxyServeArgs, proxyClientEnv, publicProxyReachable } from "../modproxy/client.ts";
import { startSumdb, startUpstream, writeApp, writeModule, writeTestModules, zipEntries, type Sumdb, type Upstream } from "../modproxy/helpers.ts";

let root: ReturnType<typeof tempDir>;
let up: Upstream;
let db: Sumdb;
let daemon: Daemon;
let proxy: string;
let modDir: string;

function env(home: string, extra: Record<string, string> = {}): Record<string, string | undefined> {
  // Shared build cache: only the module side is under test.
  return proxyClientEnv({ gocache: join(root.path, "gocache"), home, proxy, db, extra });
}

beforeAll(async () => {
  root = tempDir("gostash-modproxy-e2e-");
  const upDir = join(root.path, "up");
  writeTestModules(upDir);
  writeModule(upDir, { path: "example.com/tampered", version: "v1.0.0", files: { "t.go": "package tampered\n" } });
  up = startUpstream(upDir);
  // Entries outside module@version/: the proxy must refuse it.
  up.replace.set("/example.com/tampered/@v/v1.0.0.zip", zipEntries({ "example.com/tampered@v1.0.0/go.mod": "module example.com/tampered\n", "../../evil.go": "package evil\n" }));
  db = await startSumdb(upDir);
  const cacheDir = join(root.path, "gostash-cache");
  modDir = join(cacheDir, "modproxy");
  daemon = await startDaemon(modproxyServeArgs({ sock: join(root.path, "plugin.sock"), cacheDir, up, db }, ["--upstream-timeout", "5s"]));
  proxy = `${daemon.http}/mod`;
}, 240_000);

afterAll(async () => {
  await daemon?.stop();
  up?.stop();
  db?.stop();
  root?.cleanup();
});

describe("go command through gostash serve --modproxy", () => {
  test("go get, go mod download, go list -m -versions, go build of a module with dependencies", async () => {
    const home = join(root.path, "home1");
    const app = join(root.path, "app1");
    writeApp(app);
    const e = env(home);
    await goOK(["get", "example.com/lib@v1.1.0", "example.com/Upper/Case@v1.0.0"], app, e, daemon);
    await goOK(["mod", "download", "all"], app, e, daemon);
    expect((await goOK(["list", "-m", "-versions", "example.com/lib"], app, e, daemon)).trim()).toBe("example.com/lib v1.0.0 v1.1.0");
    await goOK(["build", "-o", "app", "."], app, e, daemon);
    const r = Bun.spawnSync([join(app, "app")], { timeout: 30_000 });
    expect(r.stdout.toString().trim()).toBe("42 Upper/Case");
    const sum = readFileSync(join(app, "go.sum"), "utf8");
    for (const m of ["example.com/lib v1.1.0 h1:", "example.com/dep v1.0.0/go.mod h1:", "example.com/Upper/Case v1.0.0 h1:"]) expect(sum).toContain(m);

    // The cache holds the GOPROXY layout, case-encoded.
    for (const f of ["example.com/!upper/!case/@v/v1.0.0.zip", "example.com/lib/@v/v1.1.0.mod", "example.com/dep/@v/v1.0.0.info", "example.com/lib/@v/list"]) {
      expect(existsSync(join(modDir, f)), f).toBe(true);
    }
    expect(existsSync(join(modDir, "sumdb", db.name, "lookup", "example.com/!upper/!case@v1.0.0"))).toBe(true);
    // The sumdb was reached through the proxy only.
    expect(Object.keys(await db.counts()).some((p) => p.startsWith("/lookup/"))).toBe(true);

    const metrics = await (await fetch(`${daemon.http}/metrics`)).text();
    expect(metrics).toMatch(/^gostash_modproxy_requests_total \d+/m);
    expect(metrics).toMatch(/^gostash_modproxy_upstream_seconds_count \d+/m);
    expect(metrics).toMatch(/^gostash_sumdb_requests_total \d+/m);
  }, 600_000);

  test("an upstream serving a zip with entries outside module@version/ is refused", async () => {
    const home = join(root.path, "home-t");
    const app = join(root.path, "app-t");
    writeApp(app);
    const r = await go(["mod", "download", "example.com/tampered@v1.0.0"], app, env(home), GO_TIMEOUT);
    expect(r.code).not.toBe(0);
    expect(existsSync(join(modDir, "example.com/tampered/@v/v1.0.0.zip"))).toBe(false);
    expect(existsSync(join(home, "gopath/pkg/mod/example.com/tampered@v1.0.0"))).toBe(false);
  }, 300_000);

  test("with the upstream and the checksum database stopped, everything comes from the cache", async () => {
    up.stop();
    db.stop();
    const home = join(root.path, "home2"); // empty module cache
    const app = join(root.path, "app2");
    writeApp(app); // no go.sum: every checksum is looked up (through the cached sumdb answers)
    const e = env(home);
    await goOK(["get", "example.com/lib@v1.1.0", "example.com/Upper/Case@v1.0.0"], app, e, daemon);
    expect((await goOK(["list", "-m", "-versions", "example.com/lib"], app, e, daemon)).trim()).toBe("example.com/lib v1.0.0 v1.1.0");
    await goOK(["build", "-o", "app", "."], app, e, daemon);
    expect(Bun.spawnSync([join(app, "app")], { timeout: 30_000 }).stdout.toString().trim()).toBe("42 Upper/Case");
  }, 600_000);

  test("the cache directory works as GOPROXY=file://", async () => {
    const home = join(root.path, "home3");
    const app = join(root.path, "app3");
    writeApp(app);
    // Key only: the go command asks file://.../sumdb/<name>/supported and reads the cached database answers.
    const e = env(home, { GOPROXY: `file://${modDir}`, GOSUMDB: db.vkey });
    await goOK(["get", "example.com/lib@v1.1.0", "example.com/Upper/Case@v1.0.0"], app, e, daemon);
    await goOK(["mod", "download", "all"], app, e, daemon);
    await goOK(["build", "-o", "app", "."], app, e, daemon);
    expect(Bun.spawnSync([join(app, "app")], { timeout: 30_000 }).stdout.toString().trim()).toBe("42 Upper/Case");
    rmSync(join(app, "app"));
  }, 600_000);
});

// The real public module proxy and checksum database: only when reachable
// (this test's sandbox usually cannot reach them; that is the one skip).
const publicOK = await publicProxyReachable();
if (!publicOK) {
  console.error("modproxy e2e: SKIPPED the public-proxy test: https://proxy.golang.org (and its /sumdb/sum.golang.org) is not reachable from here");
}

describe("against the public proxy.golang.org", () => {
  test.skipIf(!publicOK)("go mod download golang.org/x/mod through gostash with the default upstream and sum.golang.org", async () => {
    const t = tempDir("gostash-modproxy-public-");
    const d = await startDaemon(["--plugin", join(t.path, "p.sock"), "--http", "127.0.0.1:0", "--cache-dir", join(t.path, "c"), "--modproxy"]);
    try {
      const home = join(t.path, "home");
      const app = join(t.path, "app");
      writeApp(app);
      const e = goEnv({
        gocache: join(t.path, "gocache"),
        home,
        extra: { GOPROXY: `${d.http}/mod`, GOSUMDB: "sum.golang.org", GONOSUMDB: "", GOPRIVATE: "", GOFLAGS: "-mod=mod" },
      });
      const r = await go(["mod", "download", "-json", "golang.org/x/mod@v0.30.0"], app, e, GO_TIMEOUT);
      if (r.code !== 0) throw new Error(`go mod download failed:\n${r.stderr}\n${d.stderr()}`);
      expect(JSON.parse(r.stdout).Sum).toBe("h1:fDEXFVZ/fmCKProc/yAXXUijritrDzahmwwefnjoPFk=");
      expect(existsSync(join(t.path, "c/modproxy/golang.org/x/mod/@v/v0.30.0.zip"))).toBe(true);
      expect(existsSync(join(t.path, "c/modproxy/sumdb/sum.golang.org/lookup/golang.org/x/mod@v0.30.0"))).toBe(true);
    } finally {
      await d.stop();
      t.cleanup();
    }
  }, 300_000);
});

describe("two daemons sharing one S3 bucket (versitygw)", () => {
  test("the second daemon serves go mod download from the bucket with its upstream dead", async () => {
    const { startS3Server } = await import("../helpers/s3server.ts");
    const s3 = await startS3Server();
    const t = tempDir("gostash-modproxy-s3-e2e-");
    const upDir = join(t.path, "up");
    writeTestModules(upDir);
    const u = startUpstream(upDir);
    const common = ["--http", "127.0.0.1:0", "--modproxy", "--sumdb", "off", "--upstream-retries", "0", "--upstream-timeout", "3s"];
    const a = await startDaemon(["--plugin", join(t.path, "a.sock"), "--cache-dir", join(t.path, "a"), "--upstream", u.url, ...common], s3.env);
    let b: Daemon | null = null;
    try {
      const app = join(t.path, "app");
      writeApp(app);
      const e = (d: Daemon, home: string) =>
        goEnv({ gocache: join(t.path, "gocache"), home: join(t.path, home), extra: { GOPROXY: `${d.http}/mod`, GOSUMDB: "off", GOFLAGS: "-mod=mod" } });
      let r = await go(["get", "example.com/lib@v1.1.0", "example.com/Upper/Case@v1.0.0"], app, e(a, "ha"), GO_TIMEOUT);
      expect(r.code, r.stderr).toBe(0);
      // Uploads run in the background; stopping the daemon (SIGTERM) flushes them.
      expect(await a.stop()).toBe(0);
      const key = (f: string) => join(s3.dataDir, s3.bucket, "mod", f);
      const want = ["example.com/lib/@v/v1.1.0.zip", "example.com/dep/@v/v1.0.0.zip", "example.com/!upper/!case/@v/v1.0.0.zip", "example.com/lib/@v/v1.1.0.mod"];
      for (const f of want) expect(existsSync(key(f)), f).toBe(true);
      u.stop();

      b = await startDaemon(["--plugin", join(t.path, "b.sock"), "--cache-dir", join(t.path, "b"), "--upstream", "http://127.0.0.1:1", ...common], s3.env);
      rmSync(join(app, "go.sum"));
      writeApp(app);
      r = await go(["mod", "download", "example.com/lib@v1.1.0", "example.com/dep@v1.0.0", "example.com/Upper/Case@v1.0.0"], app, e(b, "hb"), GO_TIMEOUT);
      expect(r.code, `${r.stderr}\n${b.stderr()}`).toBe(0);
      expect(existsSync(join(t.path, "b", "modproxy", "example.com/lib/@v/v1.1.0.zip"))).toBe(true);
      const m = await (await fetch(`${b.http}/metrics`)).text();
      expect(m).toMatch(/^gostash_modproxy_s3_hits_total [1-9]/m);
    } finally {
      await a.stop();
      await b?.stop();
      u.stop();
      await s3.stop();
      t.cleanup();
    }
  }, 300_000);
});
