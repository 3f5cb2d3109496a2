#!/usr/bin/env bun
// The whole test suite, as README and .ci/run run it:
//   1. install the test tools (S3 server, ...) into .tools/ (scripts/tools/*.sh)
//   2. build dist/gostash (e2e tests drive the real binary through `go`)
//   3. bun test, and print one closing line "N passed, N failed".
// A missing prerequisite (Go, a tool that fails to install) fails the run
// loudly; nothing is skipped silently.
import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { FailureLog } from "./test-failures.ts";

const root = resolve(import.meta.dir, "..");

function run(cmd: string[], what: string): void {
  const p = Bun.spawnSync(cmd, { cwd: root, stdout: "inherit", stderr: "inherit", env: process.env });
  if (p.exitCode !== 0) {
    console.error(`test: ${what} failed (exit ${p.exitCode}): ${cmd.join(" ")}`);
    console.log("0 passed, 1 failed");
    process.exit(1);
  }
}

if (!Bun.which("go")) {
  console.error("test: the go command is required (the tests drive the real go toolchain); install Go 1.24+");
  console.log("0 passed, 1 failed");
  process.exit(1);
}

const toolsDir = join(root, "scripts", "tools");
for (const f of readdirSync(toolsDir).filter((f) => f.endsWith(".sh")).sort()) {
  run(["sh", join(toolsDir, f)], `tool install ${f}`);
}
run([process.execPath, "scripts/build.ts"], "build");

const args = Bun.argv.slice(2);
// e2e tests drive the real `go` command: give each test room (they carry
// their own tighter timeouts on every process they start).
const proc = Bun.spawn([process.execPath, "test", "--timeout=600000", ...(args.length ? args : ["test/"])], {
  cwd: root,
  stdout: "inherit",
  stderr: "pipe",
  env: { ...process.env, GOSTASH_BIN: join(root, "dist", "gostash"), GOSTASH_TOOLS: join(root, ".tools") },
});
// bun test prints its report on stderr; pass it through, read the counts,
// and print what each failed test printed again near the end (CI shows the tail).
let tail = "";
const dec = new TextDecoder();
const failures = new FailureLog();
for await (const chunk of proc.stderr) {
  const text = dec.decode(chunk, { stream: true });
  process.stderr.write(text);
  failures.push(text);
  tail = (tail + text).slice(-4096);
}
const code = await proc.exited;
process.stderr.write(failures.report());
const pass = Number(/(\d+) pass\b/.exec(tail)?.[1] ?? 0);
let fail = Number(/(\d+) fail\b/.exec(tail)?.[1] ?? 0);
if (code !== 0 && fail === 0) fail = 1; // crashed, or a file failed to load
console.log(`${pass} passed, ${fail} failed`);
process.exit(code === 0 && fail === 0 && pass > 0 ? 0 : 1);
