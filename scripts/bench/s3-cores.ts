// `s3.ts --cpus 1,2`: the whole bench once per core count, then its goals
// side by side. Each count runs s3.ts again under `taskset -c 0-(N-1)`, so
// everything of that run (the go command, its plugin, tar and zstd, the S3
// server and the proxy) shares N cores, and writes its figures to a file
// (--summary-json) that this reads back.
//
// Why: on this project's 2-core machine every remote-warm variant is
// CPU-bound (docs/packs.md, "CPU decides"). The tarball's restore is one
// zstd and one tar in a pipe, the go command on top; gostash lands packs on
// two threads beside the go command. How the ratios move from one core to
// two says what a runner with more cores should show, and on such a runner
// `--cpus 1,2,4` measures it instead of leaving it to arithmetic.

import { cpus } from "node:os";
import { join } from "node:path";
import { die, fmtMs, fmtRatio, log, table, tempDir } from "./lib.ts";
import type { TargetSummary } from "./s3-report.ts";

/** "1,2,4" → [1, 2, 4], each at most the machine's cores. */
export function parseCpus(list: string): number[] {
  const max = cpus().length;
  const ns = list.split(",").map((s) => Number(s.trim()));
  for (const n of ns) {
    if (!Number.isInteger(n) || n < 1) die(`--cpus ${list}: each count must be a positive integer`);
    if (n > max) die(`--cpus ${list}: this machine has ${max} cores`);
  }
  return ns;
}

/** Runs s3.ts (argv: its flags without --cpus) once per core count; prints the side-by-side table. */
export async function benchPerCoreCount(script: string, argv: string[], counts: number[]): Promise<void> {
  if (!Bun.which("taskset")) die("--cpus needs taskset (util-linux)");
  const dir = tempDir("s3-cores");
  const all: TargetSummary[] = [];
  for (const n of counts) {
    const out = join(dir, `cores-${n}.json`);
    log(`--cpus: the whole bench on ${n} core(s) (taskset -c 0-${n - 1})`);
    const p = Bun.spawn(["taskset", "-c", `0-${n - 1}`, process.execPath, script, ...argv, "--summary-json", out], { stdout: "inherit", stderr: "inherit" });
    if ((await p.exited) !== 0) die(`--cpus: the run on ${n} core(s) failed`);
    all.push(...((await Bun.file(out).json()) as TargetSummary[]));
  }
  console.log(scalingTable(all));
}

export function scalingTable(all: TargetSummary[]): string {
  const rows: string[][] = [];
  for (const s of all) {
    for (const l of s.latencies) {
      rows.push([s.target, `+${l.L} ms`, String(s.cores), fmtMs(l.remoteWarm), fmtMs(l.tarball), fmtMs(l.floor), fmtRatio(l.vsTarball), fmtRatio(l.vsFloor), fmtRatio(s.cold)]);
    }
  }
  rows.sort((a, b) => a[0]!.localeCompare(b[0]!) || parseInt(a[1]!.slice(1)) - parseInt(b[1]!.slice(1)) || Number(a[2]) - Number(b[2]));
  const head = ["target", "per request", "cores", "remote-warm", "tarball + plain go", "data floor", "/ tarball (≤ 0.80x)", "/ floor (≤ 1.30x)", "cold+upload / cold (≤ 1.15x)"];
  return `\n# The goals per core count (--cpus; medians, ratios paired per round)\n\n${table(head, rows)}`;
}
