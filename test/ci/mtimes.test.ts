// `gostash ci mtimes` on real git repositories (no go command): which paths
// get which time, and what is left alone.
import { afterAll, describe, expect, test } from "bun:test";
import { lstatSync, lutimesSync, mkdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
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
  // A command-line path is taken as it is (no un-quoting), relative to dir.
  return (await git(["hash-object", "--", file], dir)).trim();
}

/** Whether the file has the time of its current content (and not of the other content named). */
async function timedAsItself(dir: string, file: string, notLike?: string): Promise<void> {
  const now = await blobID(dir, file);
  if (notLike) expect(now).not.toBe(await blobID(dir, notLike));
  expect(mtimeMs(join(dir, file))).toBe(contentTimeMs(now));
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

describe("gostash ci mtimes: a work tree that differs from the index", () => {
  test("DIR a subdirectory: a modified file there is hashed as itself, not as the file of the same name at the top", async () => {
    const d = await repo("subdir-modified", { "go.mod": "AAAA\n", "sub/go.mod": "BBBB\n", "sub/deeper/go.mod": "DDDD\n" });
    writeFileSync(join(d, "sub", "go.mod"), "CCCC\n"); // same size
    const r = await mtimesCmd(d, ["sub"]);
    expect(r.code).toBe(0);
    await timedAsItself(d, "sub/go.mod", "go.mod");
    expect(r.stderr).toContain("1 modified in the work tree");

    // The same from inside a subdirectory, no DIR.
    writeFileSync(join(d, "sub", "deeper", "go.mod"), "EEEE\n");
    expect((await mtimesCmd(join(d, "sub", "deeper"))).code).toBe(0);
    await timedAsItself(d, "sub/deeper/go.mod", "go.mod");
  });

  test("names git could read as other names (a leading quote, a trailing CR, a newline) are hashed as themselves", async () => {
    const names = ['"q"', "q", "cr\r", "cr", "nl\nx", "nl", "back\\slash", "tab\tx"];
    const d = await repo("odd-names", Object.fromEntries(names.map((n, i) => [n, `content ${i}\n`])));
    const edited = ['"q"', "cr\r", "nl\nx", "back\\slash", "tab\tx"];
    for (const n of edited) writeFileSync(join(d, n), "EDITED!!!\n"); // same size
    const r = await mtimesCmd(d);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`${edited.length} modified in the work tree`);
    await timedAsItself(d, '"q"', "q");
    await timedAsItself(d, "cr\r", "cr");
    for (const n of names) await timedAsItself(d, n);
  });

  test("assume-unchanged and skip-worktree files rewritten with the same size get the time of what they hold now", async () => {
    const d = await repo("flagged", { "assumed.txt": "committed\n", "skipped.txt": "committed\n", "plain.txt": "x\n" });
    await git(["update-index", "--assume-unchanged", "assumed.txt"], d);
    await git(["update-index", "--skip-worktree", "skipped.txt"], d);
    writeFileSync(join(d, "assumed.txt"), "rewritten\n");
    writeFileSync(join(d, "skipped.txt"), "REWRITTEN\n");
    const committed = (await git(["ls-files", "-s", "assumed.txt"], d)).split(" ")[1]!;
    const r = await mtimesCmd(d);
    expect(r.code).toBe(0);
    expect(mtimeMs(join(d, "assumed.txt"))).not.toBe(contentTimeMs(committed));
    for (const f of ["assumed.txt", "skipped.txt", "plain.txt"]) await timedAsItself(d, f);
    expect(r.stderr).toContain("2 modified in the work tree");
  });

  test("an entry replaced by another kind of file is left as it is, and the others are timed", async () => {
    const outside = join(tmp.path, "kind-outside.txt");
    writeFileSync(outside, "outside\n");
    utimesSync(outside, OLD, OLD);
    const d = join(tmp.path, "kinds");
    mkdirSync(d, { recursive: true });
    for (const f of ["was-file-now-dir", "was-file-now-dangling", "was-file-now-link", "ok.txt", "target.txt"]) writeFileSync(join(d, f), `${f}\n`);
    symlinkSync("target.txt", join(d, "was-link-now-file"));
    await git(["init", "-q", "-b", "main"], d);
    await git(["add", "-A"], d);
    await git(["commit", "-q", "-m", "kinds"], d);
    for (const f of ["was-file-now-dir", "was-file-now-dangling", "was-file-now-link", "was-link-now-file"]) rmSync(join(d, f));
    mkdirSync(join(d, "was-file-now-dir"));
    symlinkSync("no-such-target", join(d, "was-file-now-dangling"));
    symlinkSync(outside, join(d, "was-file-now-link"));
    writeFileSync(join(d, "was-link-now-file"), "target.txt"); // the link's own blob content, as a file
    for (const f of ["was-file-now-dir", "was-file-now-dangling", "was-file-now-link", "was-link-now-file"]) lutimesSync(join(d, f), OLD, OLD);
    writeFileSync(join(d, "ok.txt"), "OK.TXT\n");

    const r = await mtimesCmd(d);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("1 modified in the work tree");
    expect(r.stderr).toContain("4 left as they are");
    expect(r.stderr.trim().split("\n")).toHaveLength(1); // no stack trace
    for (const f of ["was-file-now-dir", "was-file-now-dangling", "was-file-now-link", "was-link-now-file"]) {
      expect(mtimeMs(join(d, f))).toBe(OLD.getTime());
    }
    expect(statSync(outside).mtimeMs).toBe(OLD.getTime());
    await timedAsItself(d, "ok.txt");
    await timedAsItself(d, "target.txt");
  });

  test("a file git cannot hash (its clean filter fails) is reported and gets no time; the others are timed", async () => {
    const d = await repo("filter-fails", { "bad.txt": "bad\n", "good.txt": "good\n" });
    writeFileSync(join(d, ".gitattributes"), "bad.txt filter=boom\n");
    await git(["config", "filter.boom.clean", "false"], d);
    await git(["config", "filter.boom.required", "true"], d);
    writeFileSync(join(d, "bad.txt"), "bad, and longer\n");
    utimesSync(join(d, "bad.txt"), OLD, OLD);
    writeFileSync(join(d, "good.txt"), "good, and longer\n");
    const r = await mtimesCmd(d);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("1 could not be set");
    expect(r.stderr).toContain("gostash ci mtimes: bad.txt: git hash-object failed (exit 128): fatal: bad.txt: clean filter 'boom' failed");
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(mtimeMs(join(d, "bad.txt"))).toBe(OLD.getTime());
    await timedAsItself(d, "good.txt");
  });

  test("a name that is not UTF-8 is left as it is, and never confused with the name it would decode to", async () => {
    const d = join(tmp.path, "not-utf8");
    mkdirSync(d, { recursive: true });
    const bad = Buffer.concat([Buffer.from(d + "/n"), Buffer.from([0xff])]);
    writeFileSync(bad, "not utf-8\n");
    writeFileSync(join(d, "n\u{FFFD}"), "replaced!\n"); // the same size
    await git(["init", "-q", "-b", "main"], d);
    await git(["add", "-A"], d);
    await git(["commit", "-q", "-m", "names"], d);
    utimesSync(bad, OLD, OLD);
    const r = await mtimesCmd(d);
    expect(r.code).toBe(0);
    await timedAsItself(d, "n\u{FFFD}");
    expect(Number(lstatSync(bad, { bigint: true }).mtimeNs / 1_000_000n)).toBe(OLD.getTime());
    expect(r.stderr).toContain("1 left as they are");
  });

  test("DIR that does not exist, or is a file: exit 1, one line naming it", async () => {
    const missing = join(tmp.path, "no-such-dir");
    const r = await mtimesCmd(tmp.path, [missing]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`ci mtimes: ${missing}: no such directory`);
    expect(r.stderr).not.toContain("is git installed");
    expect(r.stderr.trim().split("\n")).toHaveLength(1);

    const file = join(tmp.path, "a-file");
    writeFileSync(file, "f\n");
    const r2 = await mtimesCmd(tmp.path, [file]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain(`ci mtimes: ${file} is not a directory`);
    expect(r2.stderr.trim().split("\n")).toHaveLength(1);
  });
});
