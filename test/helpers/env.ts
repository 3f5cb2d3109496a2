// Shared paths and process helpers for tests.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");
export const BIN = process.env.GOSTASH_BIN ?? join(ROOT, "dist", "gostash");
export const TOOLS = process.env.GOSTASH_TOOLS ?? join(ROOT, ".tools");

/** Every temp dir this test process made (removed or not: something may write there again). */
const made = new Set<string>();

/** What must happen once the last test has run (atTestRunEnd). */
const endHooks: (() => void)[] = [];

/** Runs fn after the last test of the run (test/preload.ts); `bun test` fires no process "exit" event. */
export function atTestRunEnd(fn: () => void): void {
  endHooks.push(fn);
}

/**
 * After the last test (test/preload.ts): the end hooks, then every temp dir
 * tempDir made, removed again. A test that forgets its cleanup, or fails
 * before it, must not leave its files behind (thousands of dirs, some of
 * 300 MB, piled up in a dev machine's /tmp before this), and a late write
 * after a cleanup (a cost book's timed flush makes its directory again)
 * must not either.
 */
export function endTestRun(): void {
  for (const fn of endHooks.splice(0)) {
    try {
      fn();
    } catch {}
  }
  for (const path of made) rmSync(path, { recursive: true, force: true });
  made.clear();
}

/** A fresh temporary directory, removed by the returned cleanup, and again when the test run ends. */
export function tempDir(prefix = "gostash-test-"): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  made.add(path);
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion with a hard timeout (tests never hang). */
export async function run(
  cmd: string[],
  opts: { cwd?: string; env?: Record<string, string | undefined>; timeoutMs?: number; stdin?: string } = {},
): Promise<RunResult> {
  const p = Bun.spawn(cmd, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env } as Record<string, string>,
    stdin: opts.stdin !== undefined ? new TextEncoder().encode(opts.stdin) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => p.kill(9), opts.timeoutMs ?? 240_000);
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/**
 * Sets environment variables for this test file and returns what undoes it.
 * bun test runs every file in one process: a variable left behind (say
 * GOCACHE_S3_BUCKET) reaches every binary a later file spawns.
 */
export function setEnv(vars: Record<string, string>): () => void {
  const saved = Object.keys(vars).map((k) => [k, process.env[k]] as const);
  for (const [k, v] of Object.entries(vars)) process.env[k] = v;
  return () => {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}
