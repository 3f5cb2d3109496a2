#!/usr/bin/env bun
// `go test` cache hits across fresh clones, without and with `gostash ci
// mtimes`, on any git repository holding a Go module; and the speed of
// `ci mtimes` itself.
//
//   npx bun scripts/bench/ci.ts --repo DIR [--pkgs ./...] [--keep]
//   npx bun scripts/bench/ci.ts --mtimes-only --repo DIR [--runs 3]
//
// For each variant (without, with ci mtimes): clone DIR to one path, run
// `go test PKGS` through gostash (direct mode, own GOCACHE) to fill the
// cache, delete the clone, clone again to the same path, wait past the go
// command's 2-second "too new" window, and run `go test PKGS` again; the
// second run's "ok" lines that say (cached) are the hits. Packages whose
// tests fail are left out of both counts (never cached). GOFLAGS, GOPROXY
// and the module cache come from the environment (a repository with
// dependencies needs them downloadable).
//
// --mtimes-only: clones DIR and times `gostash ci mtimes` on it, RUNS times,
// printing files/s each time.

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const root = resolve(import.meta.dir, "../..");
const bin = join(root, "dist", "gostash");
const { values: o } = parseArgs({
  options: { repo: { type: "string" }, pkgs: { type: "string", default: "./..." }, keep: { type: "boolean" }, "mtimes-only": { type: "boolean" }, runs: { type: "string", default: "3" } },
});
if (!o.repo) throw new Error("bench/ci: --repo DIR (a git repository) is required");
const repo = resolve(o.repo);
const scratch = mkdtempSync(join(tmpdir(), "gostash-bench-ci-"));
const work = join(scratch, "checkout", "repo");

function sh(cmd: string[], cwd: string, env: Record<string, string | undefined> = {}): { code: number; out: string; err: string } {
  const p = Bun.spawnSync(cmd, { cwd, env: { ...process.env, ...env } as Record<string, string>, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? 1, out: p.stdout.toString(), err: p.stderr.toString() };
}

function clone(): void {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, ".."), { recursive: true });
  const r = sh(["git", "clone", "-q", `file://${repo}`, work], scratch);
  if (r.code !== 0) throw new Error(`git clone: ${r.err}`);
}

function mtimes(): string {
  const r = sh([bin, "ci", "mtimes"], work);
  if (r.code !== 0) throw new Error(`ci mtimes: ${r.err}`);
  return r.err.trim();
}

/** package -> "cached" | "ran", passed packages only. */
function goTest(gocache: string): Map<string, string> {
  const r = sh(["go", "test", ...o.pkgs!.split(" ")], work, { GOCACHE: gocache, GOCACHEPROG: bin });
  const out = new Map<string, string>();
  for (const m of r.out.matchAll(/^ok\s+(\S+)\s+(\(cached\)|[\d.]+s)/gm)) out.set(m[1]!, m[2] === "(cached)" ? "cached" : "ran");
  return out;
}

function variant(name: string, withMtimes: boolean): { passed: number; cached: number } {
  const gocache = join(scratch, `gocache-${name}`);
  clone();
  if (withMtimes) mtimes();
  const first = goTest(gocache);
  clone();
  if (withMtimes) process.stderr.write(`bench/ci: ${mtimes()}\n`);
  else Bun.sleepSync(2500);
  const second = goTest(gocache);
  const passed = [...second.keys()].filter((p) => first.has(p));
  const cached = passed.filter((p) => second.get(p) === "cached").length;
  return { passed: passed.length, cached };
}

try {
  console.log(`bench/ci: ${repo}; load average ${sh(["cat", "/proc/loadavg"], scratch).out.trim()}; ${navigator.hardwareConcurrency} CPUs`);
  if (o["mtimes-only"]) {
    clone();
    for (let i = 0; i < Number(o.runs); i++) console.log(mtimes());
  } else {
    for (const [name, m] of [["without", false], ["with ci mtimes", true]] as const) {
      const v = variant(name.replace(/ /g, "-"), m);
      console.log(`${name}: ${v.cached} of ${v.passed} passing test packages (cached) on the second clone (${((100 * v.cached) / Math.max(1, v.passed)).toFixed(0)}%)`);
    }
  }
} finally {
  if (!o.keep) rmSync(scratch, { recursive: true, force: true });
}
