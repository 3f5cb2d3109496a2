// The GitHub Action run locally the way a runner runs it: its real entry
// points (action/main.mjs, action/post.mjs) under node, with a simulated
// runner (test/helpers/runner.ts), installing a real release (linux-x64,
// built from this tree) from a local release server through install.sh,
// with versitygw as the bucket and a local module upstream behind the
// daemon's module proxy. Then real go build and go test steps through it.
//
//   job 1 (cold): everything computed, uploaded; the summary says so
//   job 2 (a fresh machine at the same paths, same bucket): warm from the
//          bucket, every test (cached) thanks to ci mtimes
//   job 3 (the release cannot be downloaded): the job's go commands still
//          work, both steps exit 0, the summary says what went wrong
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { release, type Release } from "../../scripts/release.ts";
import { ROOT, tempDir } from "../helpers/env.ts";
import { createTestRepo, git, NON_READERS, READERS, testOutcomes } from "../helpers/gitrepo.ts";
import { newJob, runClean, type Job } from "../helpers/runner.ts";
import { startS3Server, type S3Server } from "../helpers/s3server.ts";
import { startUpstream, writeTestModules, type Upstream } from "../modproxy/helpers.ts";
import { processTempDir } from "../dist/fixture.ts";

const VERSION = "9.9.8-action.1";
const tmp = tempDir("gostash-action-");
const src = join(tmp.path, "src");
const runnerRoot = join(tmp.path, "runner"); // every job runs here, wiped first: same paths, fresh machine
let rel: Release;
let releaseServer: ReturnType<typeof Bun.serve>;
let s3: S3Server;
let upstream: Upstream;

/** Packages of the test repository, which also needs example.com/lib from the module proxy. */
const ALL = [...READERS, ...NON_READERS, "example.com/ci/uses"];

beforeAll(async () => {
  const dir = processTempDir("gostash-action-release-");
  rel = await release({ version: VERSION, outDir: join(dir, "release"), stageDir: join(dir, "stage"), targets: ["linux-x64"], level: 1, log: () => {} });
  releaseServer = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const name = new URL(req.url).pathname.replace(/^\/good\//, "");
      const path = join(rel.outDir, name);
      return name.includes("/") || !existsSync(path) ? new Response("not found", { status: 404 }) : new Response(Bun.file(path));
    },
  });
  s3 = await startS3Server();
  const up = join(tmp.path, "upstream");
  writeTestModules(up);
  upstream = startUpstream(up);
  mkdirSync(src, { recursive: true });
  await createTestRepo(src, {
    "go.mod": "module example.com/ci\n\ngo 1.22\n\nrequire example.com/lib v1.1.0\n\nrequire example.com/dep v1.0.0 // indirect\n",
    "uses/uses.go": 'package uses\n\nimport "example.com/lib"\n\n// Answer asks lib.\nfunc Answer() int { return lib.Answer() }\n',
    "uses/uses_test.go": 'package uses\n\nimport "testing"\n\nfunc TestAnswer(t *testing.T) {\n\tif Answer() != 42 {\n\t\tt.Fatal(Answer())\n\t}\n}\n',
  });
}, 600_000);

afterAll(async () => {
  releaseServer?.stop(true);
  upstream?.stop();
  await s3?.stop();
  tmp.cleanup();
});

/** What every job's environment has before the action runs: a runner with go, the bucket's credentials. */
function baseEnv(): Record<string, string> {
  return {
    PATH: process.env.PATH!,
    AWS_ACCESS_KEY_ID: s3.accessKey,
    AWS_SECRET_ACCESS_KEY: s3.secretKey,
    AWS_REGION: s3.region,
    GITHUB_EVENT_NAME: "push",
    GITHUB_REPOSITORY: "example/ci",
    GOFLAGS: "-mod=mod",
    GOPROXY: "off", // the action's GOPROXY falls through to this; the daemon's upstream is local
    GOSUMDB: "off",
    GOTOOLCHAIN: "local",
    GOTELEMETRY: "off",
    CGO_ENABLED: "0",
    GOSTASH_UPSTREAM: upstream.url,
  };
}

function inputs(over: Record<string, string> = {}): Record<string, string> {
  return {
    version: VERSION,
    "download-url": `http://127.0.0.1:${releaseServer.port}/good`,
    bucket: s3.bucket,
    region: s3.region,
    endpoint: s3.endpoint,
    "path-style": "true",
    prefix: "ci-cache",
    "read-only": "auto",
    modproxy: "true",
    "test-mtimes": "true",
    path: ".",
    ...over,
  };
}

async function checkout(job: Job): Promise<void> {
  await git(["clone", "-q", src, job.workspace], tmp.path);
}

async function goStep(job: Job, args: string[]): Promise<string> {
  const r = await runClean(["go", ...args], job.workspace, job.stepEnv());
  if (r.code !== 0) throw new Error(`go ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** The table row of one go command: [lookups, hits, from bucket, misses]. */
function row(summary: string, command: string): [number, number, number, number] {
  const line = summary.split("\n").find((l) => l.startsWith(`| \`${command}\``));
  if (!line) throw new Error(`no row for ${command} in:\n${summary}`);
  const cells = line.split(" | ").map((c) => c.trim());
  const num = (c: string) => Number(c.replace(/,/g, ""));
  return [num(cells[1]!), num(cells[2]!.split(" ")[0]!), num(cells[3]!), num(cells[4]!)];
}

describe("the GitHub Action, run as a runner runs it", () => {
  test("job 1 (cold): installs, starts the daemon, exports GOCACHEPROG and GOPROXY; post writes the summary and flushes uploads", async () => {
    const job = newJob(runnerRoot, baseEnv());
    await checkout(job);
    const main = await job.action("main", inputs());
    expect(main.code).toBe(0);
    expect(main.stdout).not.toContain("::warning");
    expect(main.stdout).toMatch(/gostash ci mtimes: .*\d+ files, 1 symlinks, \d+ directories set from their content in [\d.]+s \(\d+ files\/s\)/);
    const exported = job.exported();
    expect(exported.GOCACHEPROG).toMatch(new RegExp(`^${join(runnerRoot, "toolcache", "gostash", VERSION)}/x64/bin/gostash connect 127\\.0\\.0\\.1:\\d+$`));
    expect(exported.GOPROXY).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mod\|off$/);
    expect(exported.GOSTASH_JOB).toMatch(/^[0-9a-f-]{36}$/);
    const state = job.state();
    expect(Number(state.pid)).toBeGreaterThan(0);
    expect(pidAlive(Number(state.pid))).toBe(true);
    expect(job.outputs().version).toBe(VERSION);

    await goStep(job, ["build", "./..."]);
    const tests = testOutcomes(await goStep(job, ["test", "./..."]));
    expect([...tests.keys()].sort()).toEqual([...ALL].sort());
    expect(upstream.count("/example.com/lib/@v/v1.1.0.zip")).toBe(1); // through the daemon's module proxy

    const post = await job.action("post", inputs());
    expect(post.code).toBe(0);
    expect(post.stdout).not.toContain("::warning");
    expect(pidAlive(Number(state.pid))).toBe(false);
    const md = job.summary();
    expect(md).toContain("### gostash: ~");
    const [buildLookups, buildHits] = row(md, "go build ./...");
    expect(buildLookups).toBeGreaterThan(10);
    expect(buildHits).toBe(0);
    const [testLookups, , testFromBucket, testMisses] = row(md, "go test ./...");
    expect(testLookups).toBeGreaterThan(buildLookups);
    expect(testFromBucket).toBe(0);
    expect(testMisses).toBeGreaterThan(0);
    expect(md).toMatch(/\*\*Bucket\*\* \(daemon\): downloaded .* uploaded [1-9][\d,]* objects/);
    expect(md).toMatch(/\*\*Module proxy:\*\* [1-9]\d* requests/);
    expect(md).toContain("Daemon stopped; every upload was flushed to the bucket.");
    expect((await s3.listKeys()).filter((k) => k.startsWith("ci-cache/")).length).toBeGreaterThan(50);
  }, 900_000);

  test("job 2 (a fresh machine, same bucket): warm from the bucket, every test (cached)", async () => {
    const job = newJob(runnerRoot, baseEnv());
    await checkout(job);
    expect((await job.action("main", inputs())).code).toBe(0);
    await goStep(job, ["build", "./..."]);
    const tests = testOutcomes(await goStep(job, ["test", "./..."]));
    expect([...tests].filter(([, v]) => v === "ran")).toEqual([]);
    expect(tests.size).toBe(ALL.length);
    const post = await job.action("post", inputs());
    expect(post.code).toBe(0);
    const md = job.summary();
    if (process.env.GOSTASH_SHOW_SUMMARY) console.error(md);
    const [lookups, hits, fromBucket, misses] = row(md, "go test ./...");
    expect(hits).toBe(lookups - misses);
    expect(fromBucket).toBeGreaterThan(10);
    expect(misses).toBe(0);
    const saved = /^### gostash: ~(?:(\d+)m)?([\d.]+)s of compute saved/m.exec(md);
    expect(Number(saved?.[1] ?? 0) * 60 + Number(saved?.[2] ?? 0)).toBeGreaterThan(1);
    expect(md).toContain("Daemon stopped; every upload was flushed to the bucket.");
    // The module came from the bucket's mirror this time, not from the upstream again.
    expect(upstream.count("/example.com/lib/@v/v1.1.0.zip")).toBe(1);
  }, 900_000);

  test("job 3 (the release cannot be downloaded): nothing fails, go builds without gostash, the summary says why", async () => {
    const job = newJob(runnerRoot, baseEnv());
    await checkout(job);
    const bad = inputs({ "download-url": `http://127.0.0.1:${releaseServer.port}/missing` });
    const main = await job.action("main", bad);
    expect(main.code).toBe(0);
    expect(main.stdout).toContain("::warning title=gostash::gostash could not be installed: install: install.sh --version");
    expect(job.exported().GOCACHEPROG).toBeUndefined();
    await goStep(job, ["vet", "./reads/"]);
    const post = await job.action("post", bad);
    expect(post.code).toBe(0);
    const md = job.summary();
    expect(md).toContain("### gostash: not used in this job");
    expect(md).toContain("#### ⚠️ gostash: what went wrong (the job was not failed for it)");
    expect(md).toContain("- gostash could not be installed: install: install.sh");
  }, 300_000);

  test("the action's files are plain JavaScript with no dependencies and no build step", async () => {
    const r = await runClean(["node", "--check", join(ROOT, "action", "main.mjs")], ROOT, { PATH: process.env.PATH! });
    expect(r.code).toBe(0);
    const imports = new Bun.Glob("action/**/*.mjs").scanSync({ cwd: ROOT });
    for (const f of imports) {
      const text = await Bun.file(join(ROOT, f)).text();
      for (const m of text.matchAll(/from "([^"]+)"/g)) expect(m[1]!).toMatch(/^(node:|\.\/|\.\.\/)/);
    }
  });
});
