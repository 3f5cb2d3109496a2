// `gostash ci summary` after real go commands, in direct mode (the plugin
// writes one record per go command) and through the daemon (connect writes
// the command line and window, the daemon serves its segments at
// /debug/runs): one row per go command, with the numbers each go command's
// own --metrics line (direct) or the daemon's /metrics (daemon) reported.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { BIN, run, tempDir } from "../helpers/env.ts";
import { go, goEnv } from "../helpers/go.ts";
import { TEST_MODULE } from "../helpers/gitrepo.ts";
import { startDaemon } from "../daemon/helpers.ts";
import { parsePrometheus, value } from "../http/prom-parse.ts";

const tmp = tempDir("gostash-e2e-ci-summary-");
const mod = join(tmp.path, "mod");
const COMMANDS = [["build", "./..."], ["test", "./..."], ["vet", "./..."], ["test", "./..."]];

beforeAll(() => {
  const past = new Date(Date.now() - 3600_000);
  for (const [name, text] of Object.entries(TEST_MODULE)) {
    mkdirSync(dirname(join(mod, name)), { recursive: true });
    writeFileSync(join(mod, name), text);
  }
  mkdirSync(join(mod, "link", "testdata"), { recursive: true });
  writeFileSync(join(mod, "link", "testdata", "alias.txt"), "not a link here\n");
  Bun.spawnSync(["find", mod, "-exec", "touch", "-d", past.toISOString(), "{}", "+"]);
});
afterAll(() => tmp.cleanup());

interface Row {
  command: string;
  lookups: number;
  hits: number;
  bucket: number;
  misses: number;
  saved: string;
}

/** The per-command table rows of the Markdown (not the total). */
function rows(md: string): Row[] {
  const out: Row[] = [];
  for (const m of md.matchAll(/^\| `(go [^`]+)`[^|]* \| ([\d,]+) \| ([\d,]+) \([\d.]+%\) \| ([\d,]+) \| ([\d,]+) \| (~[^|]+) \|/gm)) {
    const num = (s: string) => Number(s.replace(/,/g, ""));
    out.push({ command: m[1]!, lookups: num(m[2]!), hits: num(m[3]!), bucket: num(m[4]!), misses: num(m[5]!), saved: m[6]!.trim() });
  }
  return out;
}

function savedSeconds(s: string): number {
  const m = /~(?:(\d+)h)?(?:(\d+)m)?(?:([\d.]+)s)?/.exec(s)!;
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

describe("ci summary", () => {
  test("direct mode: one row per go command with the numbers of its own --metrics line; written to GITHUB_STEP_SUMMARY", async () => {
    const cache = join(tmp.path, "direct-cache");
    const env = goEnv({ gocache: cache, prog: `${BIN} --metrics`, home: join(tmp.path, "home-d"), extra: { GOSTASH_JOB: "e2e-direct" } });
    const gets: number[] = [];
    for (const args of COMMANDS) {
      const r = await go(args, mod, env, 600_000);
      expect(r.code).toBe(0);
      gets.push(Number(/gostash: gets (\d+)/.exec(r.stderr)![1]));
    }
    const summaryFile = join(tmp.path, "step-summary.md");
    writeFileSync(summaryFile, "# earlier step\n");
    const s = await run([BIN, "ci", "summary", `--cache-dir=${cache}`], { env: { GOSTASH_JOB: "e2e-direct", GITHUB_STEP_SUMMARY: summaryFile } });
    expect(s.code).toBe(0);
    expect(s.stdout).toBe("");
    const md = readFileSync(summaryFile, "utf8");
    expect(md.startsWith("# earlier step\n### gostash: ~")).toBe(true);
    const table = rows(md);
    expect(table.map((r) => r.command)).toEqual(COMMANDS.map((a) => `go ${a.join(" ")}`));
    expect(table.map((r) => r.lookups)).toEqual(gets);
    const warmTest = table[3]!;
    expect(warmTest.misses).toBe(0);
    expect(warmTest.hits).toBe(warmTest.lookups);
    expect(savedSeconds(warmTest.saved)).toBeGreaterThan(0.5);
    expect(md).toMatch(/\| `compile [^`]+` \| [\d.]+s \| `go test \.\/\.\.\.` \|/);
    expect(md).toMatch(/\| `test example\.com\/ci\/[a-z0-9/]+` \| /);
    // Another job's summary has nothing of this one.
    const other = await run([BIN, "ci", "summary", `--cache-dir=${cache}`], { env: { GOSTASH_JOB: "another-job", GITHUB_STEP_SUMMARY: "" } });
    expect(other.stdout).toContain("No go command used gostash in this job");
  }, 900_000);

  test("through the daemon: rows from connect's records and the daemon's segments add up to its /metrics", async () => {
    const cache = join(tmp.path, "daemon-cache");
    const d = await startDaemon([`--plugin=${join(tmp.path, "d.sock")}`, "--http=0", `--cache-dir=${cache}`]);
    try {
      const env = goEnv({
        gocache: cache,
        prog: `${BIN} connect ${join(tmp.path, "d.sock")}`,
        home: join(tmp.path, "home-c"),
        extra: { GOSTASH_JOB: "e2e-daemon" },
      });
      for (const args of COMMANDS) expect((await go(args, mod, env, 600_000)).code).toBe(0);
      const s = await run([BIN, "ci", "summary", `--cache-dir=${cache}`, `--http=${d.http}`], { env: { GOSTASH_JOB: "e2e-daemon", GITHUB_STEP_SUMMARY: "" } });
      expect(s.code).toBe(0);
      expect(s.stderr).toBe("");
      const table = rows(s.stdout);
      expect(table.map((r) => r.command)).toEqual(COMMANDS.map((a) => `go ${a.join(" ")}`));
      const fams = parsePrometheus(await (await fetch(`${d.http}/metrics`)).text());
      expect(table.reduce((n, r) => n + r.lookups, 0)).toBe(value(fams, "gostash_gets_total")!);
      expect(table.reduce((n, r) => n + r.misses, 0)).toBe(value(fams, "gostash_misses_total")!);
      expect(table[3]!.misses).toBe(0);
      const saved = table.reduce((n, r) => n + savedSeconds(r.saved), 0);
      // Each row is shown rounded (to 0.1 s, or whole seconds past a minute).
      expect(Math.abs(saved - value(fams, "gostash_time_saved_seconds_total")!)).toBeLessThanOrEqual(2);
      expect(saved).toBeGreaterThan(0.5);
    } finally {
      await d.stop("SIGTERM");
    }
  }, 900_000);
});
