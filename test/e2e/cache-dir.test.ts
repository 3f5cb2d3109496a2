// A cache directory that cannot be used at all when gostash starts (issue
// #15, item 3): a file in its place, a read-only file system. Every mode
// stops with one line naming the directory, what set it and the cause, and
// a non-zero exit, as plain go does for GOCACHE; the go command then shows
// that line instead of "package fmt is not in std".
//
// The decision, next to plain go (both checked below):
//   - GOCACHE a file: go says "failed to initialize build cache at X: mkdir
//     X: not a directory"; gostash says "cannot use the local cache X
//     (--cache-dir): not a directory".
//   - a read-only file system: go refuses an empty one the same way, but
//     accepts one whose 00..ff directories exist and then fails the build
//     with a misleading message; gostash refuses both, naming the cause.
//   - trouble that starts mid-build (a full disk) still passes outputs
//     through with one warning: test/e2e/disk-full.test.ts.
// Read-only file systems are real tmpfs mounts (the tests run as root).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, run, tempDir } from "../helpers/env.ts";
import { go, goEnv, writeDemoModule } from "../helpers/go.ts";

const tmp = tempDir("gostash-cachedir-");
const mounts: string[] = [];
const demo = join(tmp.path, "demo");
const aFile = join(tmp.path, "a-file");
let readOnly = "";

function mountReadOnly(name: string, prepare: (dir: string) => void): string {
  const dir = join(tmp.path, name);
  mkdirSync(dir, { recursive: true });
  const mount = (opts: string) => Bun.spawnSync(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir], { stderr: "pipe" });
  const p = mount("size=4m");
  if (p.exitCode !== 0) throw new Error(`cannot mount a tmpfs: ${p.stderr.toString()}`);
  mounts.push(dir);
  prepare(dir);
  const ro = Bun.spawnSync(["mount", "-o", "remount,ro", dir], { stderr: "pipe" });
  if (ro.exitCode !== 0) throw new Error(`cannot remount read-only: ${ro.stderr.toString()}`);
  return dir;
}

beforeAll(() => {
  writeDemoModule(demo);
  writeFileSync(aFile, "not a directory\n");
  // A read-only cache that already has Go's 00..ff directories (plain go accepts it).
  readOnly = mountReadOnly("ro", (dir) => {
    for (let i = 0; i < 256; i++) mkdirSync(join(dir, i.toString(16).padStart(2, "0")));
  });
});

afterAll(() => {
  for (const m of mounts.reverse()) Bun.spawnSync(["umount", "-l", m]);
  tmp.cleanup();
});

// No bucket, whatever other test files left in process.env (some set GOCACHE_S3_* for their own runs).
const NO_S3 = { GOCACHE_S3_BUCKET: "" };
const envFor = (prog: string) => goEnv({ gocache: join(tmp.path, "gocache"), home: join(tmp.path, "home"), prog, extra: NO_S3 });

describe("a cache directory that cannot be used at start-up", () => {
  test("plain go, for comparison: GOCACHE a file is refused at once", async () => {
    const r = await go(["build", "./..."], demo, { ...envFor(""), GOCACHE: aFile });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`failed to initialize build cache at ${aFile}: mkdir ${aFile}: not a directory`);
  }, 120_000);

  test("go build with gostash --cache-dir=<a file>: one line naming the directory and the cause; no misleading 'not in std'", async () => {
    const r = await go(["build", "./..."], demo, envFor(`${BIN} --cache-dir=${aFile}`));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`gostash: cannot use the local cache ${aFile} (--cache-dir): not a directory\n`);
    expect(r.stderr).not.toContain("not in std");
    expect(r.stderr).not.toContain("ENOTDIR");
    // Named as the user set it: the variable.
    const e = await go(["build", "./..."], demo, { ...envFor(BIN), GOCACHE_DIR: join(aFile, "sub") });
    expect(e.code).not.toBe(0);
    expect(e.stderr).toContain(`gostash: cannot use the local cache ${join(aFile, "sub")} (GOCACHE_DIR): not a directory`);
  }, 120_000);

  test("a read-only file system: refused at start-up (a missing subdirectory and an existing Go cache alike)", async () => {
    for (const dir of [readOnly, join(readOnly, "new")]) {
      const r = await go(["build", "./..."], demo, envFor(`${BIN} --cache-dir=${dir}`));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`gostash: cannot use the local cache ${dir} (--cache-dir): read-only file system\n`);
      expect(r.stderr).not.toContain("not in std");
    }
  }, 120_000);

  test("plugin mode and connect by hand: exit 1, stderr only, stdout (the protocol) empty", async () => {
    for (const args of [[`--cache-dir=${aFile}`], ["connect", "127.0.0.1:1", `--cache-dir=${aFile}`]]) {
      const r = await run([BIN, ...args], { stdin: "", env: NO_S3 });
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe(`gostash: cannot use the local cache ${aFile} (--cache-dir): not a directory\n`);
    }
  }, 60_000);

  test("serve refuses before it listens; so does mod import for the module store", async () => {
    const s = await run([BIN, "serve", "--plugin=127.0.0.1:0", `--cache-dir=${aFile}`], { timeoutMs: 30_000, env: NO_S3 });
    expect(s.code).toBe(1);
    expect(s.stderr).toBe(`gostash: cannot use the local cache ${aFile} (--cache-dir): not a directory\n`);
    const m = await run([BIN, "serve", "--http=127.0.0.1:0", "--modproxy", `--modproxy-dir=${readOnly}`], { timeoutMs: 30_000, env: NO_S3 });
    expect(m.code).toBe(1);
    expect(m.stderr).toBe(`gostash: cannot use the module proxy's store ${readOnly} (--modproxy-dir): read-only file system\n`);
    const src = join(tmp.path, "empty-import");
    mkdirSync(src, { recursive: true });
    const i = await run([BIN, "mod", "import", src, `--cache-dir=${aFile}`], { timeoutMs: 30_000, env: NO_S3 });
    expect(i.code).toBe(1);
    expect(i.stderr).toBe(`gostash: cannot use the module proxy's store ${join(aFile, "modproxy")} (--cache-dir): not a directory\n`);
  }, 60_000);

  test("a missing cache directory is created, as plain go does", async () => {
    const dir = join(tmp.path, "fresh", "nested", "cache");
    const r = await go(["build", "./..."], demo, envFor(`${BIN} --cache-dir=${dir}`));
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const put = await run(["ls", dir]);
    expect(put.stdout.trim().split("\n").length).toBeGreaterThan(1);
  }, 240_000);
});
