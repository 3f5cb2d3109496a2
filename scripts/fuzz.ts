#!/usr/bin/env bun
// Runs the property-based suites longer than CI does:
//   bun scripts/fuzz.ts [runs] [seed]     (default 5000 runs, a random seed)
// A failure prints the seed and the shrunk counterexample; rerun with that
// seed to reproduce.
import { resolve } from "node:path";

const runs = Bun.argv[2] ?? "5000";
const seed = Bun.argv[3] ?? String(Math.floor(Math.random() * 2 ** 31));
console.error(`fuzz: ${runs} runs per property, seed ${seed}`);
const files = [...new Bun.Glob("test/**/fuzz*.test.ts").scanSync(resolve(import.meta.dir, ".."))];
const p = Bun.spawnSync([process.execPath, "test", "--timeout=3600000", ...files], {
  cwd: resolve(import.meta.dir, ".."),
  env: { ...process.env, GOSTASH_FUZZ_RUNS: runs, GOSTASH_FUZZ_SEED: seed },
  stdout: "inherit",
  stderr: "inherit",
});
process.exit(p.exitCode ?? 1);
