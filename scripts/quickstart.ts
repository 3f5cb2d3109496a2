#!/usr/bin/env bun
// `npm run quickstart [-- <module dir>]`: builds dist/gostash and runs the
// main job on the default setup (local disk cache in Go's own $GOCACHE, no
// S3): `go build ./...` twice through gostash as GOCACHEPROG, cold-ish then
// warm, with the plugin's --metrics summary. Without a directory it builds a
// small demo module in a temporary directory.
//
// Expected failures (no go command, a directory that is not there, a build
// that fails) end with one line saying so, never a stack trace.
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { writeDemoModule } from "../test/helpers/go.ts";
import { runScript, ScriptError } from "./script-error.ts";

const root = resolve(import.meta.dir, "..");
const bin = join(root, "dist", "gostash");

/** The module directory given on the command line, checked; "" for the demo module. */
function moduleDir(arg: string | undefined): string {
  if (!arg) return "";
  const dir = resolve(arg);
  if (!existsSync(dir)) throw new ScriptError(`quickstart: ${dir} does not exist (give a Go module directory, or nothing for the demo module)`);
  if (!statSync(dir).isDirectory()) throw new ScriptError(`quickstart: ${dir} is not a directory`);
  return dir;
}

/** Runs a command with inherited output; a command that cannot start is a ScriptError, not a stack trace. */
function spawnSync(cmd: string[], opts: { cwd?: string; env?: Record<string, string | undefined> } = {}): number {
  try {
    return Bun.spawnSync(cmd, { ...opts, stdout: "inherit", stderr: "inherit" }).exitCode ?? 1;
  } catch (err) {
    throw new ScriptError(`quickstart: cannot run ${cmd[0]}${opts.cwd ? ` in ${opts.cwd}` : ""}: ${(err as Error).message}`);
  }
}

async function quickstart(): Promise<void> {
  if (!Bun.which("go")) throw new ScriptError("quickstart: the go command is required (https://go.dev/dl/)");
  let dir = moduleDir(Bun.argv[2]);
  if (spawnSync([process.execPath, join(root, "scripts/build.ts")]) !== 0) throw new ScriptError("quickstart: building dist/gostash failed");
  let cleanup = () => {};
  if (!dir) {
    dir = mkdtempSync(join(tmpdir(), "gostash-quickstart-"));
    writeDemoModule(dir);
    const made = dir;
    cleanup = () => rmSync(made, { recursive: true, force: true });
  }
  try {
    const env = { ...process.env, GOCACHEPROG: `${bin} --metrics`, GOFLAGS: process.env.GOFLAGS ?? "-mod=mod" };
    const gocache = Bun.spawnSync(["go", "env", "GOCACHE"], { env }).stdout.toString().trim();
    console.error(`quickstart: building ${dir} with GOCACHEPROG=${bin} (local cache: ${gocache})`);
    for (const round of ["first", "second"]) {
      const t0 = performance.now();
      const code = spawnSync(["go", "build", "./..."], { cwd: dir, env });
      if (code !== 0) throw new ScriptError(`quickstart: go build ./... in ${dir} failed (exit ${code})`);
      console.error(`quickstart: ${round} build took ${((performance.now() - t0) / 1000).toFixed(2)}s`);
    }
  } finally {
    cleanup();
  }
  console.error(`
quickstart: done. To use gostash for every go command on this machine:
  go env -w GOCACHEPROG=${bin}
and to stop:
  go env -u GOCACHEPROG`);
}

await runScript("quickstart", quickstart);
