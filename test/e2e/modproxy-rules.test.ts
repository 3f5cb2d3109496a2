// Routing rules end to end: the real `gostash serve --modproxy --rules`
// binary, the real go command, a local upstream and the test checksum
// database. `go get m@latest` picks the highest allowed version when a rule
// forbids the newest; an excluded module fails with the proxy's 403
// message in go's output; rewriting the file changes the answers of the
// running daemon; a bad file stops the daemon from starting.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startDaemon, type Daemon } from "../daemon/helpers.ts";
import { BIN, run, tempDir } from "../helpers/env.ts";
import { go } from "../helpers/go.ts";
import { GO_TIMEOUT, modproxyServeArgs, proxyClientEnv } from "../modproxy/client.ts";
import { startSumdb, startUpstream, writeApp, writeModule, writeTestModules, type Sumdb, type Upstream } from "../modproxy/helpers.ts";

let root: ReturnType<typeof tempDir>;
let up: Upstream;
let db: Sumdb;
let daemon: Daemon;
let proxy: string;
let rulesFile: string;

function env(home: string): Record<string, string | undefined> {
  return proxyClientEnv({ gocache: join(root.path, "gocache"), home, proxy, db });
}

function writeRules(rules: unknown): void {
  writeFileSync(rulesFile, JSON.stringify(rules, null, 2));
}

beforeAll(async () => {
  root = tempDir("gostash-rules-e2e-");
  const upDir = join(root.path, "up");
  writeTestModules(upDir); // example.com/lib v1.0.0 v1.1.0, dep, Upper/Case
  writeModule(upDir, {
    path: "example.com/lib",
    version: "v1.2.0",
    requires: { "example.com/dep": "v1.0.0" },
    files: { "lib.go": 'package lib\n\nimport "example.com/dep"\n\nfunc Answer() int { return dep.Twice(22) }\n' },
  });
  writeModule(upDir, { path: "example.com/bad", version: "v1.0.0", files: { "bad.go": "package bad\n" } });
  up = startUpstream(upDir);
  db = await startSumdb(upDir);
  rulesFile = join(root.path, "rules.json");
  writeRules({
    rules: [
      { match: "example.com/bad", action: "exclude", reason: "blocked by the security team" },
      { match: "example.com/lib", versions: "<v1.2.0", reason: "v1.2.0 changes the answer" },
    ],
  });
  daemon = await startDaemon(modproxyServeArgs({ sock: join(root.path, "plugin.sock"), cacheDir: join(root.path, "cache"), up, db }, ["--rules", rulesFile]));
  proxy = `${daemon.http}/mod`;
}, 240_000);

afterAll(async () => {
  await daemon?.stop();
  up?.stop();
  db?.stop();
  root?.cleanup();
});

describe("go command through gostash serve --rules", () => {
  test("go get @latest picks the highest allowed version; go mod download of an excluded module shows the 403 message", async () => {
    const app = join(root.path, "app");
    writeApp(app);
    const e = env(join(root.path, "home"));
    const got = await go(["get", "example.com/lib@latest"], app, e, GO_TIMEOUT);
    expect(got.code, `${got.stderr}\n${daemon.stderr()}`).toBe(0);
    expect(readFileSync(join(app, "go.mod"), "utf8")).toContain("example.com/lib v1.1.0");
    expect(up.count("/example.com/lib/@v/v1.2.0.zip")).toBe(0);

    const list = await go(["list", "-m", "-versions", "example.com/lib"], app, e, GO_TIMEOUT);
    expect(list.stdout.trim()).toBe("example.com/lib v1.0.0 v1.1.0");

    const bad = await go(["mod", "download", "example.com/bad@v1.0.0"], app, e, GO_TIMEOUT);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("403 Forbidden");
    expect(bad.stderr).toContain('gostash: module example.com/bad is excluded by rule #1 ("example.com/bad"): blocked by the security team');
    expect(up.count("/example.com/bad/@v/v1.0.0.info") + up.count("/example.com/bad/@v/v1.0.0.zip")).toBe(0);

    // Asking for the refused version explicitly fails with the rule's message.
    const pinned = await go(["get", "example.com/lib@v1.2.0"], app, e, GO_TIMEOUT);
    expect(pinned.code).not.toBe(0);
    expect(pinned.stderr).toContain('example.com/lib@v1.2.0 is refused by rule #2 ("example.com/lib") (allowed versions "<v1.2.0"): v1.2.0 changes the answer');

    const m = await (await fetch(`${daemon.http}/metrics`)).text();
    expect(m).toMatch(/^gostash_modproxy_rules_excluded_total [1-9]/m);
    expect(m).toMatch(/^gostash_modproxy_rules_refused_total [1-9]/m);
  }, 600_000);

  test("the running daemon follows a rewritten rules file", async () => {
    writeRules({ rules: [{ match: "example.com/bad", action: "exclude" }] });
    // The file is checked at most once a second: wait until the list shows the newly allowed version.
    let body = "";
    for (let i = 0; i < 100 && !body.includes("v1.2.0"); i++) {
      await Bun.sleep(100);
      body = await (await fetch(`${proxy}/example.com/lib/@v/list`)).text();
    }
    expect(body).toContain("v1.2.0");
    const app = join(root.path, "app2");
    writeApp(app);
    const r = await go(["get", "example.com/lib@latest"], app, env(join(root.path, "home2")), GO_TIMEOUT);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(app, "go.mod"), "utf8")).toContain("example.com/lib v1.2.0");
  }, 600_000);

  test("a bad rules file at start-up: the daemon exits with a configuration error", async () => {
    const bad = join(root.path, "bad.json");
    writeFileSync(bad, JSON.stringify({ rules: [{ match: "example.com/x", action: "redirect" }] }));
    const r = await run([BIN, "serve", "--plugin", join(root.path, "bad.sock"), "--http", "127.0.0.1:0", "--modproxy", "--cache-dir", join(root.path, "c2"), "--rules", bad], {
      timeoutMs: 30_000,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`gostash: config: --rules ${bad}: rule #1: action "redirect" needs "to"`);
  }, 60_000);
});
