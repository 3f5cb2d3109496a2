// `gostash mod export` and `gostash mod import` end to end with the real go
// command, a local upstream and the local signed test checksum database:
// an exported tree (directory and .tar.gz) builds a project with
// GOPROXY=file://..., GOSUMDB naming the test database (answered from the
// exported sumdb files) and nothing running; a real $GOMODCACHE download
// cache imported into a fresh daemon serves `go mod download` with the
// upstream stopped; a tampered zip in an import is rejected and reported.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { startDaemon, type Daemon } from "../daemon/helpers.ts";
import { BIN, run, tempDir } from "../helpers/env.ts";
import { go, goEnv } from "../helpers/go.ts";
import { startSumdb, startUpstream, writeApp, writeTestModules, type Sumdb, type Upstream } from "../modproxy/helpers.ts";
import { walkFiles } from "../../src/modproxy/transfer/tree.ts";
import { partialTiles, treeSizeOf } from "../../src/modproxy/sumdb/tiles.ts";
import { tilePath } from "../../src/modproxy/sumdb/tlog.ts";

const T = 240_000;
let root: ReturnType<typeof tempDir>;
let up: Upstream;
let db: Sumdb;
let daemon: Daemon | null = null;

function appWithRequires(dir: string): void {
  writeApp(dir);
  writeFileSync(join(dir, "go.mod"), "module example.com/app\n\ngo 1.22\n\nrequire (\n\texample.com/Upper/Case v1.0.0\n\texample.com/lib v1.1.0\n)\n");
}

function baseEnv(home: string, extra: Record<string, string>): Record<string, string | undefined> {
  return goEnv({
    gocache: join(root.path, "gocache"),
    home,
    extra: { GONOSUMDB: "", GONOSUMCHECK: "", GOPRIVATE: "", GONOPROXY: "", GOINSECURE: "", GOFLAGS: "-mod=mod", ...extra },
  });
}

async function goOK(args: string[], cwd: string, e: Record<string, string | undefined>): Promise<string> {
  const r = await go(args, cwd, e, T);
  if (r.code !== 0) throw new Error(`go ${args.join(" ")} failed (${r.code}):\n${r.stderr}${daemon ? `\n--- daemon:\n${daemon.stderr().slice(-3000)}` : ""}`);
  return r.stdout;
}

const exportDir = () => join(root.path, "export");
const exportTgz = () => join(root.path, "export.tar.gz");
let warmCache = "";

beforeAll(async () => {
  root = tempDir("gostash-mod-export-e2e-");
  const upDir = join(root.path, "up");
  writeTestModules(upDir);
  up = startUpstream(upDir);
  db = await startSumdb(upDir);
  const app = join(root.path, "app-src");
  appWithRequires(app);
  const env = baseEnv(join(root.path, "home-export"), { GOPROXY: up.url, GOSUMDB: `${db.vkey} ${db.url}` });
  for (const out of [exportDir(), exportTgz()]) {
    const r = await run([BIN, "mod", "export", "--out", out, "--go-mod", join(app, "go.mod")], { env, timeoutMs: T });
    if (r.code !== 0) throw new Error(`mod export failed:\n${r.stderr}`);
    expect(r.stderr).toContain("gostash mod export:");
  }
  // A real module cache, filled by the go command (with its .lock, .ziphash and sumdb files).
  const home = join(root.path, "home-warm");
  const warm = join(root.path, "app-warm");
  appWithRequires(warm);
  await goOK(["mod", "download", "all"], warm, baseEnv(home, { GOPROXY: up.url, GOSUMDB: `${db.vkey} ${db.url}` }));
  warmCache = join(home, "gopath", "pkg", "mod");
  // From here on nothing is reachable.
  up.stop();
  db.stop();
}, 400_000);

afterAll(async () => {
  await daemon?.stop();
  up?.stop();
  db?.stop();
  root?.cleanup();
});

describe("gostash mod export", () => {
  test("the exported directory builds the project with GOPROXY=file://, the exported sumdb files, and no network", async () => {
    const dir = exportDir();
    for (const f of ["example.com/lib/@v/v1.1.0.zip", "example.com/dep/@v/v1.0.0.mod", "example.com/!upper/!case/@v/v1.0.0.info", `sumdb/${db.name}/supported`, `sumdb/${db.name}/latest`, "MANIFEST"]) {
      expect(existsSync(join(dir, f)), f).toBe(true);
    }
    expect(existsSync(join(dir, "example.com/lib/@v/v1.1.0.lock"))).toBe(false);
    // MANIFEST: sha256 of every file.
    const lines = readFileSync(join(dir, "MANIFEST"), "utf8").trim().split("\n");
    expect(lines.length).toBeGreaterThan(8);
    for (const l of lines) {
      const [hex, rel] = l.split("  ") as [string, string];
      expect(createHash("sha256").update(readFileSync(join(dir, rel))).digest("hex"), rel).toBe(hex);
    }
    expect(lines.some((l) => l.includes(`sumdb/${db.name}/lookup/example.com/lib@v1.1.0`))).toBe(true);
    // Every tree a stored lookup names has its partial tiles, whatever order the exporting go command verified them in.
    const sdb = join(dir, "sumdb", db.name);
    const lookups = [...walkFiles(join(sdb, "lookup"))];
    expect(lookups.length).toBeGreaterThanOrEqual(3);
    for (const l of lookups) {
      for (const t of partialTiles(8, treeSizeOf(readFileSync(join(sdb, "lookup", l)))!)) {
        const rel = `sumdb/${db.name}/${tilePath(t)}`;
        expect(existsSync(join(dir, rel)), rel).toBe(true);
        expect(lines.some((m) => m.endsWith(`  ${rel}`)), rel).toBe(true);
      }
    }

    const app = join(root.path, "app-file");
    appWithRequires(app); // no go.sum: every hash is checked against the exported checksum database files
    const e = baseEnv(join(root.path, "home-file"), { GOPROXY: `file://${dir}`, GOSUMDB: db.vkey });
    await goOK(["build", "-o", "app", "."], app, e);
    expect(Bun.spawnSync([join(app, "app")], { timeout: 30_000 }).stdout.toString().trim()).toBe("42 Upper/Case");
    expect(readFileSync(join(app, "go.sum"), "utf8")).toContain("example.com/dep v1.0.0/go.mod h1:");
  }, 400_000);

  test("the .tar.gz export unpacks to the same tree", async () => {
    const x = join(root.path, "export-x");
    mkdirSync(x);
    const r = await run(["tar", "-xzf", exportTgz(), "-C", x], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    // (The test database appends records as they are first looked up, so its signed answers differ between the two runs.)
    const names = (d: string) => readFileSync(join(d, "MANIFEST"), "utf8").trim().split("\n").map((l) => l.split("  ")[1]).filter((n) => !n!.startsWith("sumdb/"));
    expect(names(x)).toEqual(names(exportDir()));
    const app = join(root.path, "app-tgz");
    appWithRequires(app);
    await goOK(["mod", "download", "all"], app, baseEnv(join(root.path, "home-tgz"), { GOPROXY: `file://${x}`, GOSUMDB: db.vkey }));
  }, 400_000);

  test("inside a module, without --go-mod, it exports that module's go.mod (#15 item 10)", async () => {
    const app = join(root.path, "app-cwd");
    appWithRequires(app);
    const sub = join(app, "internal", "deep");
    mkdirSync(sub, { recursive: true });
    const out = join(root.path, "export-cwd");
    // The first export serves as the upstream: nothing else is running by now.
    const env = baseEnv(join(root.path, "home-cwd"), { GOPROXY: `file://${exportDir()}`, GOSUMDB: db.vkey });
    const r = await run([BIN, "mod", "export", "--out", out], { cwd: sub, env, timeoutMs: T });
    expect(r.stderr).toContain(`gostash mod export: exporting the module graph of ${join(app, "go.mod")}\n`);
    expect(r.code, r.stderr).toBe(0);
    for (const f of ["example.com/lib/@v/v1.1.0.zip", "example.com/dep/@v/v1.0.0.mod", "MANIFEST"]) expect(existsSync(join(out, f)), f).toBe(true);
    // Outside any module it still asks for one.
    const none = await run([BIN, "mod", "export", "--out", join(root.path, "export-none")], { cwd: "/", env, timeoutMs: T });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("mod export needs --go-mod FILE or module@version arguments (there is no go.mod here or in a parent directory)");
    expect(none.stderr).toContain("Run 'gostash mod export --help' for usage.");
  }, 400_000);
});

describe("gostash mod import", () => {
  test("a tampered zip is rejected and reported; a real download cache imported into a fresh daemon serves go mod download with the upstream stopped", async () => {
    const goSum = join(root.path, "app-file", "go.sum");
    expect(existsSync(goSum)).toBe(true);
    // Tampered copy: one zip's content changed, entry names intact.
    const bad = join(root.path, "tampered");
    cpSync(join(warmCache, "cache", "download"), bad, { recursive: true });
    const zipPath = join(bad, "example.com/!upper/!case/@v/v1.0.0.zip");
    const zip = readFileSync(zipPath);
    const at = zip.indexOf('return "Upper/Case"');
    expect(at).toBeGreaterThan(0);
    zip.write('return "Upper/Cake"', at);
    writeFileSync(zipPath, zip);
    const cacheBad = join(root.path, "cache-bad");
    let r = await run([BIN, "mod", "import", bad, "--cache-dir", cacheBad, "--go-sum", goSum, "--sumdb", "off"], { timeoutMs: T });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("rejected example.com/!upper/!case/@v/v1.0.0.zip: checksum mismatch");
    expect(r.stderr).toMatch(/imported \d+ files .*skipped \d+, rejected 1/);
    expect(existsSync(join(cacheBad, "modproxy", "example.com/!upper/!case/@v/v1.0.0.zip"))).toBe(false);
    expect(existsSync(join(cacheBad, "modproxy", "example.com/lib/@v/v1.1.0.zip"))).toBe(true);

    // The real $GOMODCACHE (the command finds cache/download in it).
    const cache = join(root.path, "cache-good");
    r = await run([BIN, "mod", "import", warmCache, "--cache-dir", cache, "--go-sum", goSum, "--sumdb", "off"], { timeoutMs: T });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/imported 1\d files .* rejected 0/);
    console.error(r.stderr.trim().split("\n").at(-1));

    daemon = await startDaemon([
      "--plugin", join(root.path, "d.sock"),
      "--http", "127.0.0.1:0",
      "--cache-dir", cache,
      "--modproxy",
      "--upstream", up.url, // stopped
      "--sumdb", `${db.name}=${db.url}`, // stopped
      "--upstream-timeout", "3s",
      "--upstream-retries", "0",
    ]);
    const app = join(root.path, "app-import");
    appWithRequires(app);
    writeFileSync(join(app, "go.sum"), readFileSync(goSum));
    const proxy = `${daemon.http}/mod`;
    const e = baseEnv(join(root.path, "home-import"), { GOPROXY: proxy, GOSUMDB: `${db.vkey} ${proxy}/sumdb/${db.name}` });
    await goOK(["mod", "download", "all"], app, e);
    await goOK(["build", "-o", "app", "."], app, e);
    expect(Bun.spawnSync([join(app, "app")], { timeout: 30_000 }).stdout.toString().trim()).toBe("42 Upper/Case");
  }, 400_000);
});
