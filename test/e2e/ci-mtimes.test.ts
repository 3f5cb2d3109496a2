// `gostash ci mtimes` with the real go command and real git clones: a
// repository whose tests read testdata (a file, a directory listing, a nested
// file, a file through a symlink) and some whose tests read nothing, cloned,
// tested through gostash, deleted and cloned again at the same path.
//
// Without ci mtimes every package whose test opens a file reruns on the new
// clone; with it every package is (cached); a testdata change of the same
// size reruns exactly its package; the same holds for --depth 1 clones.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { BIN, run, tempDir } from "../helpers/env.ts";
import { go, goEnv } from "../helpers/go.ts";
import { commitChange, createTestRepo, git, NON_READERS, READERS, testOutcomes } from "../helpers/gitrepo.ts";

const tmp = tempDir("gostash-e2e-ci-mtimes-");
const src = join(tmp.path, "src");
const work = join(tmp.path, "checkout", "repo"); // every clone lands here
const env = goEnv({ gocache: join(tmp.path, "gocache"), prog: BIN, home: join(tmp.path, "home") });
const ALL = [...READERS, ...NON_READERS];

beforeAll(async () => {
  mkdirSync(src, { recursive: true });
  await createTestRepo(src);
}, 60_000);
afterAll(() => tmp.cleanup());

async function freshClone(depth1 = false): Promise<void> {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, ".."), { recursive: true });
  await git(["clone", "-q", ...(depth1 ? ["--depth", "1", `file://${src}`] : [src]), work], tmp.path);
}

async function mtimes(): Promise<string> {
  const r = await run([BIN, "ci", "mtimes"], { cwd: work, timeoutMs: 60_000 });
  expect(r.code).toBe(0);
  expect(r.stdout).toBe("");
  return r.stderr;
}

async function goTest(): Promise<Map<string, "cached" | "ran">> {
  const r = await go(["test", "./..."], work, env, 300_000);
  if (r.code !== 0) throw new Error(`go test failed:\n${r.stdout}\n${r.stderr}`);
  const o = testOutcomes(r.stdout);
  expect([...o.keys()].sort()).toEqual([...ALL].sort());
  return o;
}

function ran(o: Map<string, "cached" | "ran">): string[] {
  return [...o].filter(([, v]) => v === "ran").map(([k]) => k).sort();
}

describe("ci mtimes: go test results stay cached across fresh clones", () => {
  test("without it, every package whose test opens a file reruns on a new clone at the same path", async () => {
    await freshClone();
    await Bun.sleep(2100); // the go command caches nothing read within 2 s of its modification
    expect(ran(await goTest())).toEqual([...ALL].sort());
    await freshClone();
    await Bun.sleep(2100);
    expect(ran(await goTest())).toEqual([...READERS].sort());
  }, 600_000);

  test("with it, every package is (cached) on the second clone; a same-size testdata change reruns exactly its package", async () => {
    await freshClone();
    const line = await mtimes();
    expect(line).toMatch(/\d+ files, 1 symlinks, \d+ directories set from their content in [\d.]+s \(\d+ files\/s\)/);
    await goTest(); // fills the cache, keyed on the derived times

    await freshClone();
    await mtimes();
    expect(ran(await goTest())).toEqual([]);

    await commitChange(src, "reads/testdata/x.txt", "content two\n"); // same size
    await freshClone();
    await mtimes();
    expect(ran(await goTest())).toEqual(["example.com/ci/reads"]);

    // The file behind the symlink changes: the test that reads through the link reruns.
    await commitChange(src, "shared/data.txt", "shared DATA\n");
    await freshClone();
    await mtimes();
    expect(ran(await goTest())).toEqual(["example.com/ci/link"]);
  }, 600_000);

  test("the same with --depth 1 clones", async () => {
    await freshClone(true);
    expect(await git(["rev-parse", "--is-shallow-repository"], work)).toBe("true\n");
    await mtimes();
    // The full clones above left the same content with the same times: already warm.
    expect(ran(await goTest())).toEqual([]);

    await commitChange(src, "nested/deep/testdata/sub/y.json", '{"y": 2}\n');
    await freshClone(true);
    await mtimes();
    expect(ran(await goTest())).toEqual(["example.com/ci/nested/deep"]);
    await freshClone(true);
    await mtimes();
    expect(ran(await goTest())).toEqual([]);
  }, 600_000);
});
