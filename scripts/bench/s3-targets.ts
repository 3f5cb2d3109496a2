// What scripts/bench/s3.ts builds: each target is a directory and the go
// commands one CI job would run there, in order. A "run" of a target is all
// of its commands, each a go command of its own (so, in plugin mode, a
// gostash process of its own: one pack reader and one pack upload each).
//
//   std           go build std                          (in the repository)
//   x/tools       go build ./...                        (golang.org/x/tools at
//                 go test -run XXX ./...                 --tools-version)
//
// `go test -run XXX` runs no test, so its warm rerun is almost only cache
// lookups (every result is cached): the CI case. x/tools is fetched once
// from the Go module proxy into .bench/ (a writable copy, its dependencies
// in the module cache); every build runs with GOPROXY=off.

import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { benchDir, die, log, root } from "./lib.ts";

export interface Target {
  name: string;
  dir: string;
  commands: string[][];
}

export function targetNamed(name: string, toolsVersion: string): Target {
  if (name === "std") return { name, dir: root, commands: [["build", "std"]] };
  if (name === "x/tools") {
    return {
      name,
      dir: ensureXTools(toolsVersion),
      commands: [
        ["build", "./..."],
        ["test", "-run", "XXX", "./..."],
      ],
    };
  }
  return die(`unknown target ${name}: std or x/tools`);
}

/** golang.org/x/tools at version, as a writable module with its dependencies downloaded. */
function ensureXTools(version: string): string {
  const dir = join(benchDir, `xtools-${version}`);
  const stamp = join(dir, ".ready");
  if (existsSync(stamp)) return dir;
  log(`fetching golang.org/x/tools@${version} from the module proxy (first time) ...`);
  const env = { ...process.env, GOFLAGS: "-mod=mod", GOTOOLCHAIN: "local", GOENV: "off" };
  const dl = Bun.spawnSync(["go", "mod", "download", "-json", `golang.org/x/tools@${version}`], { env, cwd: benchDir, stderr: "inherit" });
  if (dl.exitCode !== 0) die(`go mod download golang.org/x/tools@${version} failed`);
  const src = JSON.parse(dl.stdout.toString()).Dir as string;
  mkdirSync(benchDir, { recursive: true });
  cpSync(src, dir, { recursive: true });
  makeWritable(dir);
  const deps = Bun.spawnSync(["go", "mod", "download"], { env, cwd: dir, stderr: "inherit" });
  if (deps.exitCode !== 0) die(`go mod download in ${dir} failed`);
  Bun.write(stamp, `${version}\n`);
  return dir;
}

/** The module cache is read-only; the copy must not be (go writes nothing there, but rm -rf must work). */
function makeWritable(dir: string): void {
  chmodSync(dir, 0o755);
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) makeWritable(p);
    else chmodSync(p, 0o644);
  }
}
