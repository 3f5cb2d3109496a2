// ci summary's pieces: the run log on disk, the join of daemon segments
// with connect windows, the Markdown, and output descriptions.
import { afterAll, describe, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { archivePackage, describeOutput, testPackage } from "../../src/ci/describe.ts";
import { jobID, goSubcommand, shortCommand, shownCommand } from "../../src/ci/job.ts";
import { DaemonJournal, type Segment } from "../../src/ci/journal.ts";
import { CostTracker } from "../../src/buildcache/costs.ts";
import { openCostBook } from "../../src/store/costs.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { stubHandler } from "../helpers/stub-handler.ts";
import { zeroCounts, type CommandCounts } from "../../src/buildcache/command-counts.ts";
import { RunStats } from "../../src/ci/run-stats.ts";
import { appendRun, readRuns, runLogPath, type RunRecord } from "../../src/ci/runlog.ts";
import { gatherReport, joinRows, owningWindow, slowestOf } from "../../src/ci/summary.ts";
import { renderMarkdown } from "../../src/ci/summary-md.ts";
import { daemonURL } from "../../src/ci/summary-command.ts";
import { tempDir } from "../helpers/env.ts";

const tmp = tempDir("gostash-ci-summary-");
afterAll(() => tmp.cleanup());

function counters(over: Partial<CommandCounts>): CommandCounts {
  return { ...zeroCounts(), ...over };
}

function rec(over: Partial<RunRecord>): RunRecord {
  return { v: 1, job: "j", mode: "connect", pid: 1, argv: ["go", "build", "./..."], start: 0, end: 0, counters: null, uploads: null, slowest: [], ...over };
}

function seg(conn: number, first: number, last: number, c: Partial<CommandCounts>, slowest: Segment["slowest"] = []): Segment {
  return { conn, first, last, counters: counters(c), slowest };
}

describe("run log", () => {
  test("appends records a reader gets back in order; a torn last line is skipped", () => {
    const dir = join(tmp.path, "log1");
    mkdirSync(dir);
    expect(readRuns(dir)).toEqual([]);
    expect(appendRun(dir, rec({ start: 1 }))).toBeNull();
    expect(appendRun(dir, rec({ start: 2, mode: "plugin", counters: counters({ gets: 3 }) }))).toBeNull();
    appendFileSync(runLogPath(dir), '{"v":1,"job":"j","mode":"plu'); // a crash mid-append
    expect(readRuns(dir).map((r) => r.start)).toEqual([1, 2]);
    expect(appendRun(join(dir, "missing", "dir"), rec({}))).toBeInstanceOf(Error);
  });

  test("stays bounded: past 1 MiB it keeps the newest records", () => {
    const dir = join(tmp.path, "log2");
    mkdirSync(dir);
    const big = "x".repeat(2000);
    for (let i = 0; i < 800; i++) appendRun(dir, rec({ start: i, argv: ["go", "test", big] }));
    expect(statSync(runLogPath(dir)).size).toBeLessThanOrEqual(1 << 20);
    const runs = readRuns(dir);
    expect(runs.at(-1)!.start).toBe(799);
    expect(runs[0]!.start).toBeGreaterThan(0);
  });
});

describe("joining daemon segments with connect windows", () => {
  const build = rec({ argv: ["go", "build", "./..."], start: 1000, end: 1020 });
  const testRun = rec({ argv: ["go", "test", "./..."], start: 1030, end: 9000 });

  test("back-to-back commands: each segment goes to the window that holds it, not the one starting right after", () => {
    expect(owningWindow([build, testRun], seg(1, 1005, 1015, {}))).toBe(build);
    expect(owningWindow([build, testRun], seg(2, 1040, 8000, {}))).toBe(testRun);
    // Just outside a window (clock granularity): still that window.
    expect(owningWindow([build, testRun], seg(1, 995, 1021, {}))).toBe(build);
    expect(owningWindow([build, testRun], seg(9, 20_000, 20_001, {}))).toBeNull();
  });

  test("rows in order with the segments' counters; other clients' segments during the job get a row of their own", () => {
    const rows = joinRows(
      [build, testRun],
      [
        seg(1, 1005, 1015, { gets: 2, misses: 2, puts: 2 }),
        seg(2, 1040, 5000, { gets: 10, hitsLocal: 6, hitsRemote: 3, misses: 1, savedMs: 4000 }, [{ what: "test example.com/a", costMs: 900 }]),
        seg(3, 5001, 8000, { gets: 5, hitsLocal: 5, savedMs: 100 }), // a redial after an idle timeout: same command
        seg(4, 9500, 9600, { gets: 7, hitsLocal: 7 }),
        seg(0, 10, 20, { gets: 99 }), // before the job: another job's
      ],
      1000,
    );
    expect(rows.map((r) => [r.sub, r.counters.gets])).toEqual([
      ["build", 2],
      ["test", 15],
      [null, 7],
    ]);
    expect(rows[1]!.counters.savedMs).toBe(4100);
    expect(rows[1]!.slowest).toEqual([{ what: "test example.com/a", costMs: 900 }]);
    expect(rows[2]!.via).toBe("other");
  });

  test("plugin records bring their own counters; a connect record with local counters adds the daemon's part", () => {
    const plugin = rec({ mode: "plugin", start: 1, end: 2, counters: counters({ gets: 4, hitsLocal: 4 }), uploads: { count: 2, bytes: 10, failed: 0, left: 0 } });
    const takeover = rec({ start: 100, end: 200, counters: counters({ gets: 3, misses: 3 }) });
    const rows = joinRows([plugin, takeover], [seg(5, 110, 120, { gets: 1, hitsLocal: 1 })], 0);
    expect(rows.map((r) => [r.via, r.counters.gets])).toEqual([
      ["plugin", 4],
      ["daemon+local", 4],
    ]);
    expect(rows[0]!.uploads?.bytes).toBe(10);
  });

  test("the slowest misses: costliest first, one per description and command", () => {
    const rows = joinRows([testRun], [seg(2, 1040, 1050, { gets: 1 }, [
      { what: "test example.com/a", costMs: 900 },
      { what: "test example.com/a", costMs: 850 },
      { what: "compile example.com/a (1 KiB)", costMs: 950 },
    ])], 0);
    expect(slowestOf(rows).map((s) => [s.what, s.costMs])).toEqual([
      ["compile example.com/a (1 KiB)", 950],
      ["test example.com/a", 900],
    ]);
  });
});

describe("the daemon's journal", () => {
  test("two go commands at the same time through one daemon: one segment each, exactly", async () => {
    const dir = join(tmp.path, "journal");
    mkdirSync(dir);
    const metrics = new Metrics();
    const tracker = new CostTracker(openCostBook(dir), metrics);
    const journal = new DaemonJournal(tracker, metrics);
    const stub = stubHandler(dir);
    const [one, two] = [tracker.wrap(stub, { conn: 1 }), tracker.wrap(stub, { conn: 2 })];
    const id = (i: number) => i.toString(16).padStart(64, "0");
    for (let i = 0; i < 10; i++) {
      one.get(id(i));
      if (i % 2) two.get(id(100 + i));
    }
    const w = two.put(id(101), "f".repeat(64), 0);
    await w.commit();
    one.get(id(101)); // a hit on what the other command stored
    const segs = journal.answer().segments.map((s) => [s.conn, s.counters.gets, s.counters.misses, s.counters.hitsLocal, s.counters.puts]);
    expect(segs).toEqual([
      [1, 11, 10, 1, 0],
      [2, 5, 5, 0, 1],
    ]);
  });
});

describe("summary", () => {
  test("gathers this job's records only, and renders them with totals, slowest misses and a note for an unreachable daemon", async () => {
    const dir = join(tmp.path, "gather");
    mkdirSync(dir);
    appendRun(dir, rec({ job: "old", mode: "plugin", start: 1, end: 2, counters: counters({ gets: 50 }) }));
    appendRun(dir, rec({ job: "mine", mode: "plugin", argv: ["/usr/local/go/bin/go", "vet", "./..."], start: 3, end: 4,
      counters: counters({ gets: 8, hitsLocal: 5, hitsRemote: 2, misses: 1, savedMs: 61_000, bytesFromBucket: 2048, hitsWithoutCost: 1 }),
      slowest: [{ what: "vet (analysis facts, 181 B)", costMs: 1500 }], uploads: { count: 1, bytes: 3 << 20, failed: 0, left: 0 } }));
    const r = await gatherReport({ cacheDir: dir, job: "mine", since: 0, daemonURL: "http://127.0.0.1:1", token: null });
    expect(r.rows).toHaveLength(1);
    expect(r.totals.gets).toBe(8);
    expect(r.notes[0]).toContain("could not read the daemon's records at http://127.0.0.1:1/debug/runs");
    const md = renderMarkdown(r);
    expect(md).toContain("### gostash: ~1m01s of compute saved");
    expect(md).toContain("1 go command: 7 hits of 8 cache lookups (87.5%), 2 of them from the bucket; 1 misses rebuilt.");
    expect(md).toContain("| `go vet ./...` | 8 | 7 (87.5%) | 2 | 1 | ~1m01s | 2.0 KiB | 3.0 MiB |");
    expect(md).toContain("| `vet (analysis facts, 181 B)` | 1.5s | `go vet ./...` |");
    expect(md).toContain("1 hits were on entries with no recorded cost");
    expect(md).toContain("> ⚠️ could not read the daemon's records");
    expect(md).toContain("**Bucket** (direct): uploaded 1 objects (3.0 MiB)");
  });

  test("the job summary hides what a go command's flags may carry (-ldflags -X secrets, -args)", async () => {
    const dir = join(tmp.path, "hidden");
    mkdirSync(dir);
    const argv = ["/usr/local/go/bin/go", "test", "-ldflags", "-X main.key=s3cret", "./...", "-args", "-password", "hunter2"];
    appendRun(dir, rec({ job: "mine", mode: "plugin", argv, start: 3, end: 4, counters: counters({ gets: 2, misses: 2 }),
      slowest: [{ what: "test binary", costMs: 900 }] }));
    const md = renderMarkdown(await gatherReport({ cacheDir: dir, job: "mine", since: 0, daemonURL: null }));
    expect(md).toContain("`go test -ldflags=*** ./... -args ***`");
    expect(md).not.toContain("s3cret");
    expect(md).not.toContain("hunter2");
  });

  test("nothing recorded: says so", async () => {
    const md = renderMarkdown(await gatherReport({ cacheDir: join(tmp.path, "none"), job: "x", since: 0, daemonURL: null }));
    expect(md).toContain("No go command used gostash in this job");
  });
});

describe("helpers", () => {
  test("job IDs from the CI environment", () => {
    expect(jobID({})).toBeNull();
    expect(jobID({ GOSTASH_JOB: "abc", GITHUB_RUN_ID: "1" })).toBe("abc");
    expect(jobID({ GITHUB_RUN_ID: "7", GITHUB_RUN_ATTEMPT: "2", GITHUB_JOB: "test", GITHUB_REPOSITORY: "o/r" })).toBe("github:o/r:7:2:test");
    expect(jobID({ CI_JOB_ID: "99", CI_PROJECT_PATH: "g/p" })).toBe("gitlab:g/p:99");
  });

  test("command lines", () => {
    expect(shortCommand(["/usr/local/go/bin/go", "test", "-race", "./..."])).toBe("go test -race ./...");
    expect(shortCommand(null)).toContain("not available");
    // For the daemon's status page: values that may hold secrets are hidden.
    expect(shownCommand(["/usr/local/go/bin/go", "build", "-ldflags", "-X main.key=s3cret", "-gcflags=all=-N", "-o", "bin/", "./..."])).toBe(
      "go build -ldflags=*** -gcflags=*** -o bin/ ./...",
    );
    expect(shownCommand(["go", "test", "--toolexec", "wrap --token x", "./pkg", "-args", "-password", "y"])).toBe("go test --toolexec=*** ./pkg -args ***");
    expect(shownCommand(null)).toBeNull();
    expect(goSubcommand(["go", "-C", "x", "build"])).toBe("build");
    expect(goSubcommand(["go", "-C=x", "test"])).toBe("test");
    expect(goSubcommand(["go", "vet", "./..."])).toBe("vet");
  });

  test("daemon addresses", () => {
    expect(daemonURL(undefined)).toBeNull();
    expect(daemonURL("5970")).toBe("http://127.0.0.1:5970");
    expect(daemonURL(":5970")).toBe("http://127.0.0.1:5970");
    expect(daemonURL("10.0.0.1:80")).toBe("http://10.0.0.1:80");
    expect(daemonURL("https://cache.example/")).toBe("https://cache.example");
    expect(() => daemonURL("nope")).toThrow("not a port, host:port or URL");
  });

  test("output descriptions", () => {
    const dir = join(tmp.path, "outs");
    mkdirSync(dir);
    const w = (name: string, data: string | Uint8Array) => (writeFileSync(join(dir, name), data), join(dir, name));
    expect(describeOutput(w("t", "ok  \texample.com/x/y\t0.012s\n"), 24)).toBe("test example.com/x/y");
    const log = w("log", "# test log\nopen testdata/a.txt\n");
    expect(describeOutput(log, 30, [w("other", "PASS\n"), w("ok", "ok  \texample.com/z\t0.1s\n")])).toBe("test example.com/z");
    expect(describeOutput(log, 30, [])).toBe("test run");
    expect(describeOutput(w("exe", "\x7fELF\x02\x01\x01"), 7)).toBe("link (executable, 7 B)");
    expect(describeOutput(join(dir, "gone"), 5)).toBe("output no longer in the cache (5 B)");
    expect(testPackage("ok  \ta/b\t(cached)\n")).toBe("a/b");
    const arch = "!<arch>\n...go:cuinfo.producer.example.com/m/pkgruntime.x...go:cuinfo.packagename.example.com/m/pkggo:info.example.com/m/pkg.T...";
    expect(archivePackage(arch)).toBe("example.com/m/pkg");
    expect(describeOutput(w("a", arch), arch.length)).toBe(`compile example.com/m/pkg (${arch.length} B)`);
    const stats = new RunStats();
    for (let i = 0; i < 15; i++) stats.add({ kind: "put", actionID: String(i), size: 1, costMs: i * 10, diskPath: `/p${i}` });
    expect(stats.slowest.map((s) => s.costMs)).toEqual([140, 130, 120, 110, 100, 90, 80, 70, 60, 50]);
    expect(stats.slowest.at(-1)!.next).toEqual(["/p6", "/p7", "/p8"]);
  });
});
