#!/usr/bin/env bun
// `npm run quickstart [-- <module dir>]`: builds dist/gostash and runs the
// main job on the default setup (local disk cache in Go's own $GOCACHE, no
// S3): `go build ./...` twice through gostash as GOCACHEPROG, cold-ish then
// warm, with the plugin's --metrics summary. Without a directory it builds a
// small demo module in a temporary directory.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { writeDemoModule } from "../test/helpers/go.ts";

const root = resolve(import.meta.dir, "..");
const bin = join(root, "dist", "gostash");

if (!Bun.which("go")) {
  console.error("quickstart: the go command is required (https://go.dev/dl/)");
  process.exit(1);
}
const build = Bun.spawnSync([process.execPath, join(root, "scripts/build.ts")], { stdout: "inherit", stderr: "inherit" });
if (build.exitCode !== 0) process.exit(1);

let dir = Bun.argv[2] ? resolve(Bun.argv[2]) : "";
let cleanup = () => {};
if (!dir) {
  dir = mkdtempSync(join(tmpdir(), "gostash-quickstart-"));
  writeDemoModule(dir);
  cleanup = () => rmSync(dir, { recursive: true, force: true });
}

const env = { ...process.env, GOCACHEPROG: `${bin} --metrics`, GOFLAGS: process.env.GOFLAGS ?? "-mod=mod" };
const gocache = Bun.spawnSync(["go", "env", "GOCACHE"], { env }).stdout.toString().trim();
console.error(`quickstart: building ${dir} with GOCACHEPROG=${bin} (local cache: ${gocache})`);
for (const round of ["first", "second"]) {
  const t0 = performance.now();
  const p = Bun.spawnSync(["go", "build", "./..."], { cwd: dir, env, stdout: "inherit", stderr: "inherit" });
  const secs = ((performance.now() - t0) / 1000).toFixed(2);
  if (p.exitCode !== 0) {
    console.error(`quickstart: go build failed (exit ${p.exitCode})`);
    cleanup();
    process.exit(1);
  }
  console.error(`quickstart: ${round} build took ${secs}s`);
}
cleanup();
console.error(`
quickstart: done. To use gostash for every go command on this machine:
  go env -w GOCACHEPROG=${bin}
and to stop:
  go env -u GOCACHEPROG`);
