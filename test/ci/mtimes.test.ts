// `gostash ci mtimes` on real git repositories (no go command): which paths
// get which time, and what is left alone.
import { afterAll, describe, expect, test } from "bun:test";
import { lstatSync, mkdirSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { contentTimeMs } from "../../src/ci/mtimes.ts";
import { BIN, run, tempDir } from "../helpers/env.ts";
import { git, gitEnv } from "../helpers/gitrepo.ts";

const tmp = tempDir("gostash-ci-mtimes-");
afterAll(() => tmp.cleanup());

const OLD = new Date("2024-05-05T05:05:05Z");

async function repo(name: string, files: Record<string, string>): Promise<string> {
  const dir = join(tmp.path, name);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(join(dir, f, ".."), { recursive: true });
    writeFileSync(join(dir, f), text);
  }
  await git(["init", "-q", "-b", "main"], dir);
  await git(["add", "-A"], dir);
  await git(["commit", "-q", "-m", "init"], dir);
  return dir;
}

function mtimesCmd(cwd: string, args: string[] = []) {
  return run([BIN, "ci", "mtimes", ...args], { cwd, env: gitEnv(), timeoutMs: 60_000 });
}

function mtimeMs(path: string): number {
  return Number(lstatSync(path, { bigint: true }).mtimeNs / 1_000_000n);
}

async function blobID(dir: string, file: string): Promise<string> {
  return (await git(["hash-object", file], dir)).trim();
}

describe("contentTimeMs", () => {
  test("whole milliseconds between 2000 and mid-2008, a function of the ID only", () => {
    const ids = Array.from({ length: 2000 }, (_, i) => new Bun.CryptoHasher("sha1").update(String(i)).digest("hex"));
    const times = ids.map(contentTimeMs);
    for (const t of times) {
      expect(Number.isInteger(t)).toBe(true);
      expect(t).toBeGreaterThanOrEqual(Date.UTC(2000, 0, 1));
      expect(t).toBeLessThan(Date.UTC(2008, 7, 1));
    }
    expect(new Set(times).size).toBe(ids.length);
    expect(contentTimeMs(ids[7]!)).toBe(times[7]!);
    expect(contentTimeMs("0000000000000000000000000000000000000000")).toBe(Date.UTC(2000, 0, 1));
    expect(() => contentTimeMs("not-hex")).toThrow("not an object ID");
  });
});

describe("gostash ci mtimes", () => {
  test("tracked files and their directories get the time of their content; the same content gets the same time in another clone", async () => {
    const a = await repo("same-a", { "x/data.txt": "same\n", "y.go": "package y\n" });
    const b = await repo("same-b", { "x/data.txt": "same\n", "other.txt": "different tree\n" });
    for (const d of [a, b]) {
      const r = await mtimesCmd(d);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe("");
    }
    expect(mtimeMs(join(a, "x", "data.txt"))).toBe(contentTimeMs(await blobID(a, "x/data.txt")));
    expect(mtimeMs(join(a, "x", "data.txt"))).toBe(mtimeMs(join(b, "x", "data.txt")));
    expect(mtimeMs(join(a, "y.go"))).toBe(contentTimeMs(await blobID(a, "y.go")));
    // Directories: same tracked children, same time; different children, different time.
    expect(mtimeMs(join(a, "x"))).toBe(mtimeMs(join(b, "x")));
    expect(mtimeMs(a)).not.toBe(mtimeMs(b));
    expect(mtimeMs(a)).toBeLessThan(Date.UTC(2009, 0, 1));
  });

  test("untracked and ignored files, and .git, are left alone", async () => {
    const d = await repo("untracked", { ".gitignore": "*.log\n", "a.txt": "a\n" });
    writeFileSync(join(d, "new.txt"), "untracked\n");
    writeFileSync(join(d, "build.log"), "ignored\n");
    for (const f of ["new.txt", "build.log"]) utimesSync(join(d, f), OLD, OLD);
    const head = mtimeMs(join(d, ".git", "HEAD"));
    expect((await mtimesCmd(d)).code).toBe(0);
    expect(mtimeMs(join(d, "new.txt"))).toBe(OLD.getTime());
    expect(mtimeMs(join(d, "build.log"))).toBe(OLD.getTime());
    expect(mtimeMs(join(d, ".git", "HEAD"))).toBe(head);
    expect(mtimeMs(join(d, "a.txt"))).toBe(contentTimeMs(await blobID(d, "a.txt")));
  });

  test("a file modified in the work tree gets the time of its current content, not the index's", async () => {
    const d = await repo("modified", { "m.txt": "committed\n", "same.txt": "x\n" });
    const committed = await blobID(d, "m.txt");
    writeFileSync(join(d, "m.txt"), "edited!!!\n"); // same size
    const r = await mtimesCmd(d);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("1 modified in the work tree");
    const now = await blobID(d, "m.txt");
    expect(now).not.toBe(committed);
    expect(mtimeMs(join(d, "m.txt"))).toBe(contentTimeMs(now));
  });

  test("a deleted tracked file is reported as absent; the command still succeeds", async () => {
    const d = await repo("deleted", { "gone.txt": "bye\n", "kept.txt": "hi\n" });
    Bun.spawnSync(["rm", join(d, "gone.txt")]);
    const r = await mtimesCmd(d);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("1 tracked but absent");
    expect(mtimeMs(join(d, "kept.txt"))).toBe(contentTimeMs(await blobID(d, "kept.txt")));
  });

  test("a symlink gets its own time (lutimes); a target outside the repository is never touched", async () => {
    const outside = join(tmp.path, "outside.txt");
    writeFileSync(outside, "outside\n");
    utimesSync(outside, OLD, OLD);
    const d = join(tmp.path, "links");
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, "target.txt"), "inside\n");
    symlinkSync(outside, join(d, "out-link"));
    symlinkSync("target.txt", join(d, "in-link"));
    await git(["init", "-q", "-b", "main"], d);
    await git(["add", "-A"], d);
    await git(["commit", "-q", "-m", "links"], d);
    const r = await mtimesCmd(d);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("1 files, 2 symlinks");
    expect(statSync(outside).mtimeMs).toBe(OLD.getTime());
    const linkID = (await git(["ls-files", "-s", "out-link"], d)).split(" ")[1]!;
    expect(mtimeMs(join(d, "out-link"))).toBe(contentTimeMs(linkID));
    expect(mtimeMs(join(d, "target.txt"))).toBe(contentTimeMs(await blobID(d, "target.txt")));
  });

  test("a checked-out submodule's files get times too; DIR limits the work to a subdirectory", async () => {
    const sub = await repo("sub-src", { "s.txt": "in the submodule\n" });
    const d = await repo("super", { "top.txt": "top\n", "part/p.txt": "part\n" });
    await git(["-c", "protocol.file.allow=always", "submodule", "add", "-q", sub, "mod"], d);
    await git(["commit", "-q", "-m", "submodule"], d);
    const r = await mtimesCmd(d);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("1 submodules");
    expect(mtimeMs(join(d, "mod", "s.txt"))).toBe(contentTimeMs(await blobID(sub, "s.txt")));

    utimesSync(join(d, "top.txt"), OLD, OLD);
    utimesSync(join(d, "part", "p.txt"), OLD, OLD);
    const r2 = await mtimesCmd(d, ["part"]);
    expect(r2.code).toBe(0);
    expect(r2.stderr).toContain("1 files");
    expect(mtimeMs(join(d, "top.txt"))).toBe(OLD.getTime());
    expect(mtimeMs(join(d, "part", "p.txt"))).toBe(contentTimeMs(await blobID(d, "part/p.txt")));
  });

  test("outside a git work tree: exit 1, one line naming the directory, nothing changed", async () => {
    const d = join(tmp.path, "not-a-repo");
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, "f.txt"), "f\n");
    utimesSync(join(d, "f.txt"), OLD, OLD);
    const r = await mtimesCmd(tmp.path, [d]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`ci mtimes: ${d} is not inside a git work tree`);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(mtimeMs(join(d, "f.txt"))).toBe(OLD.getTime());
  });
});
