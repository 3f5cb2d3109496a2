// Private modules through `gostash serve --modproxy --private=...`, end to
// end: the real binary, the real go command as the client, and, in the
// daemon, the real go command fetching from real git repositories created
// here (reached through a url.insteadOf rule in a test-only git config given
// to the daemon). Public modules come from the local test upstream and its
// signed checksum database, as in modproxy.test.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/env.ts";
import { go } from "../helpers/go.ts";
import { startDaemon, type Daemon } from "../daemon/helpers.ts";
import { GO_TIMEOUT, goOK, modproxyServeArgs, proxyClientEnv } from "../modproxy/client.ts";
import { makeGitModule, writeGitConfig } from "../modproxy/git.ts";
import { startSumdb, startUpstream, writeTestModules, type Sumdb, type Upstream } from "../modproxy/helpers.ts";

const PRIV = "private.example.com/team/lib.git";
const SLOW = "private.example.com/team/slow.git";

let root: ReturnType<typeof tempDir>;
let up: Upstream;
let db: Sumdb;
let daemon: Daemon;
let proxy: string;
let modDir: string;
let gitConfig: string;
/** A git "server" that accepts requests and never answers them. */
let stall: ReturnType<typeof Bun.serve>;
let stallHits = 0;

function env(home: string, extra: Record<string, string> = {}): Record<string, string | undefined> {
  return proxyClientEnv({
    gocache: join(root.path, "gocache"),
    home,
    proxy,
    db,
    extra: {
      GONOSUMDB: "private.example.com",
      // The client itself could never reach the repositories.
      GIT_CONFIG_GLOBAL: "/dev/null",
      GIT_CONFIG_NOSYSTEM: "1",
      ...extra,
    },
  });
}

async function metric(d: Daemon, name: string): Promise<number> {
  const text = await (await fetch(`${d.http}/metrics`)).text();
  const m = new RegExp(`^gostash_${name} (\\d+(?:\\.\\d+)?)$`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

/** Processes whose parent is pid (zombies included: an un-awaited child shows up here). */
function childrenOf(pid: number): string[] {
  const out: string[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === pid) out.push(`${p} ${stat.slice(stat.indexOf("("), stat.lastIndexOf(")") + 1)} state ${fields[0]}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Live processes whose working directory is under dir (an orphaned git would be). */
function processesIn(dir: string): string[] {
  const out: string[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readlinkSync(`/proc/${p}/cwd`).startsWith(dir)) out.push(`${p} ${readFileSync(`/proc/${p}/cmdline`, "utf8").replaceAll("\0", " ")}`);
    } catch {
      // gone, a zombie, or not ours to read
    }
  }
  return out;
}

function writeApp(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "go.mod"), "module example.com/app\n\ngo 1.22\n");
  writeFileSync(
    join(dir, "main.go"),
    `package main\n\nimport (\n\t"fmt"\n\n\t"example.com/lib"\n\tsecret "${PRIV}"\n)\n\nfunc main() { fmt.Println(lib.Answer(), secret.Value()) }\n`,
  );
}

function daemonArgs(cacheDir: string, extra: string[] = []): string[] {
  const sock = join(cacheDir, "..", `${cacheDir.split("/").pop()}.sock`);
  return modproxyServeArgs({ sock, cacheDir, up, db }, ["--private", "private.example.com", ...extra]);
}

function daemonEnv(): Record<string, string> {
  return { HOME: join(root.path, "daemon-home"), GIT_CONFIG_GLOBAL: gitConfig, GIT_CONFIG_NOSYSTEM: "1", GOPRIVATE: "", GOFLAGS: "" };
}

beforeAll(async () => {
  root = tempDir("gostash-private-e2e-");
  const upDir = join(root.path, "up");
  writeTestModules(upDir);
  up = startUpstream(upDir);
  db = await startSumdb(upDir);
  const repo = join(root.path, "git", "lib");
  const goMod = `module ${PRIV}\n\ngo 1.22\n`;
  await makeGitModule(repo, [
    { tag: "v1.0.0", files: { "go.mod": goMod, "secret.go": "package secret\n\n// Value is private.\nfunc Value() int { return 1 }\n" } },
    { tag: "v1.1.0", files: { "secret.go": "package secret\n\n// Value is private.\nfunc Value() int { return 2 }\n" } },
  ]);
  stall = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch(req) {
      stallHits++;
      return new Promise<Response>((resolve) => req.signal.addEventListener("abort", () => resolve(new Response("gone", { status: 500 }))));
    },
  });
  gitConfig = join(root.path, "gitconfig");
  writeGitConfig(gitConfig, {
    "https://private.example.com/team/lib": `file://${repo}`,
    "https://private.example.com/team/slow": `http://127.0.0.1:${stall.port}/slow`,
  });
  const cacheDir = join(root.path, "gostash-cache");
  modDir = join(cacheDir, "modproxy");
  daemon = await startDaemon(daemonArgs(cacheDir), daemonEnv());
  proxy = `${daemon.http}/mod`;
}, 240_000);

afterAll(async () => {
  await daemon?.stop();
  up?.stop();
  db?.stop();
  stall?.stop(true);
  root?.cleanup();
});

describe("private modules through gostash serve --modproxy --private", () => {
  test("go build of a project using a private module (via the go command) and a public one (via the upstream)", async () => {
    const home = join(root.path, "home1");
    const app = join(root.path, "app1");
    writeApp(app);
    const e = env(home);
    await goOK(["get", `${PRIV}@v1.1.0`, "example.com/lib@v1.1.0"], app, e, daemon);
    await goOK(["build", "-o", "app", "."], app, e, daemon);
    expect(Bun.spawnSync([join(app, "app")], { timeout: 30_000 }).stdout.toString().trim()).toBe("42 2");
    const sum = readFileSync(join(app, "go.sum"), "utf8");
    expect(sum).toContain(`${PRIV} v1.1.0 h1:`);
    expect(sum).toContain("example.com/lib v1.1.0 h1:");

    // The private module came from the go command run by the daemon, and is stored like any other.
    expect(await metric(daemon, "modproxy_private_fetches_total")).toBeGreaterThan(0);
    expect(await metric(daemon, "modproxy_private_failures_total")).toBe(0);
    for (const f of ["@v/v1.1.0.zip", "@v/v1.1.0.mod", "@v/v1.1.0.info"]) expect(existsSync(join(modDir, PRIV, f)), f).toBe(true);
    // Its name never reached the public upstream nor the checksum database; the public module did come from there.
    expect([...up.hits.keys()].filter((p) => p.includes("private.example.com"))).toEqual([]);
    expect(up.count("/example.com/lib/@v/v1.1.0.zip")).toBe(1);
    expect(Object.keys(await db.counts()).filter((p) => p.includes("private.example.com"))).toEqual([]);
  }, 600_000);

  test("go list -m -versions lists both tags; @latest resolves to the newest", async () => {
    const home = join(root.path, "home2");
    const app = join(root.path, "app2");
    writeApp(app);
    const e = env(home);
    expect((await goOK(["list", "-m", "-versions", PRIV], app, e, daemon)).trim()).toBe(`${PRIV} v1.0.0 v1.1.0`);
    expect(JSON.parse(await goOK(["list", "-m", "-json", `${PRIV}@latest`], app, e, daemon)).Version).toBe("v1.1.0");
    // The list is stored (and kept for the list TTL) like an upstream answer.
    expect(readFileSync(join(modDir, PRIV, "@v/list"), "utf8")).toBe("v1.0.0\nv1.1.0\n");
  }, 600_000);

  test("a checksum-database lookup of a private path is refused with 403 and says what to set", async () => {
    const refusedBefore = await metric(daemon, "modproxy_private_sumdb_refused_total");
    const r = await fetch(`${proxy}/sumdb/${db.name}/lookup/${PRIV}@v1.0.0`);
    expect(r.status).toBe(403);
    const body = await r.text();
    expect(body).toContain(`${PRIV} is a private module`);
    expect(body).toContain("GONOSUMDB=private.example.com");

    // A client without GONOSUMDB: the go command stops and shows the message.
    const app = join(root.path, "app3");
    writeApp(app);
    const res = await go(["mod", "download", `${PRIV}@v1.0.0`], app, env(join(root.path, "home3"), { GONOSUMDB: "" }), GO_TIMEOUT);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("GONOSUMDB=private.example.com");

    expect(await metric(daemon, "modproxy_private_sumdb_refused_total")).toBe(refusedBefore + 2);
    expect(Object.keys(await db.counts()).filter((p) => p.includes("private.example.com"))).toEqual([]);
  }, 600_000);

  test("a private version fetched once is served from the store afterwards, without running the go command", async () => {
    const app = join(root.path, "app4");
    writeApp(app);
    // v1.0.0's zip has not been asked for yet (the refused client above stopped at the checksum): one go command.
    const before = await metric(daemon, "modproxy_private_fetches_total");
    await goOK(["mod", "download", `${PRIV}@v1.0.0`], app, env(join(root.path, "home4a")), daemon);
    const afterFirst = await metric(daemon, "modproxy_private_fetches_total");
    expect(afterFirst).toBeGreaterThan(before);
    // A second client with an empty module cache: everything from the store.
    const out = JSON.parse(await goOK(["mod", "download", "-json", `${PRIV}@v1.0.0`], app, env(join(root.path, "home4b")), daemon));
    expect(out.Sum).toMatch(/^h1:/);
    expect(await metric(daemon, "modproxy_private_fetches_total")).toBe(afterFirst);
  }, 600_000);

  test("an unknown private version is a 404 naming the revision, never a 500, and leaves no child process", async () => {
    for (const f of ["info", "mod", "zip"]) {
      const r = await fetch(`${proxy}/${PRIV}/@v/v9.9.9.${f}`);
      const body = await r.text();
      expect(r.status, `${f}: ${body}`).toBe(404);
      expect(body).toContain("unknown revision v9.9.9");
    }
    const r = await fetch(`${proxy}/private.example.com/team/nothere.git/@v/list`);
    expect([404, 410]).toContain(r.status);
    expect(await r.text()).toContain("private.example.com/team/nothere.git");

    const app = join(root.path, "app5");
    writeApp(app);
    const res = await go(["mod", "download", `${PRIV}@v9.9.9`], app, env(join(root.path, "home5")), GO_TIMEOUT);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("unknown revision v9.9.9");
    expect(childrenOf(daemon.proc.pid)).toEqual([]);
  }, 600_000);

  test("a repository that never answers: the go command and its git are killed at --private-timeout, 410, nothing left running", async () => {
    const t = tempDir("gostash-private-timeout-");
    const cacheDir = join(t.path, "cache");
    const d = await startDaemon(daemonArgs(cacheDir, ["--private-timeout", "2s"]), daemonEnv());
    try {
      const r = await fetch(`${d.http}/mod/${SLOW}/@v/list`);
      const body = await r.text();
      expect(r.status, body).toBe(410);
      expect(body).toContain("--private-timeout");
      // git really was waiting on the server when the deadline came.
      expect(stallHits).toBeGreaterThan(0);
      expect(await metric(d, "modproxy_private_timeouts_total")).toBe(1);
      expect(childrenOf(d.proc.pid)).toEqual([]);
      // git runs inside the private module cache; killed with its process group, none is left.
      expect(processesIn(join(cacheDir, "private-gomodcache"))).toEqual([]);
      // The daemon goes on serving private modules.
      expect((await (await fetch(`${d.http}/mod/${PRIV}/@v/list`)).text()).trim()).toBe("v1.0.0\nv1.1.0");
    } finally {
      await d.stop();
      t.cleanup();
    }
  }, 300_000);
});
