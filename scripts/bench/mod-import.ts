#!/usr/bin/env bun
// `gostash mod import` throughput with checksum-database verification vs
// without (--sumdb off: validation and re-hashing only), side by side in
// one run, interleaved. The source is a generated download cache of
// --modules modules (one version each: .info, .mod, a .zip of about
// --zip-kib KiB); the database is the local signed test checksum database
// (test/fixtures/sumdb, built into .tools/bin), over HTTP on loopback, so
// "verified" pays one lookup per module plus the tiles, all proven.
// Every run imports into a fresh --cache-dir (nothing is skipped).
//
//   npx bun scripts/bench/mod-import.ts [--modules 300] [--zip-kib 64] [--runs 3] [--rebuild] [--keep]

import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { startSumdb, writeModule } from "../../test/modproxy/helpers.ts";
import { ensureGostash, interleave, log, median, run, setKeepTemps, tempDir, type Variant } from "./lib.ts";

const defaults: Record<string, string | boolean> = { modules: "300", "zip-kib": "64", runs: "3", rebuild: false, keep: false };
const flags = { ...defaults };
for (let i = 2; i < Bun.argv.length; i++) {
  const [k, inline] = Bun.argv[i]!.replace(/^--/, "").split("=", 2) as [string, string | undefined];
  if (!(k in defaults)) throw new Error(`unknown flag ${Bun.argv[i]}; known: ${Object.keys(defaults).map((d) => `--${d}`).join(" ")}`);
  flags[k] = typeof defaults[k] === "boolean" ? inline !== "false" : (inline ?? Bun.argv[++i]!);
}
const MODULES = Number(flags.modules);
const ZIP_KIB = Number(flags["zip-kib"]);
const RUNS = Number(flags.runs);
setKeepTemps(flags.keep === true);

const bin = ensureGostash({ rebuild: flags.rebuild === true });
const src = tempDir("mod-import-src");
log(`generating ${MODULES} modules with ~${ZIP_KIB} KiB zips ...`);
for (let i = 0; i < MODULES; i++) {
  // Base64 of random bytes: text a zip stores as is.
  const body = randomBytes(Math.floor((ZIP_KIB * 1024 * 3) / 4)).toString("base64");
  writeModule(src, { path: `bench.example.com/mod${i}`, version: "v1.0.0", files: { "data.go": `package mod${i}\n\nconst Data = "${body}"\n` } });
}
const db = await startSumdb(src, "sum.bench");

interface Report {
  files: number;
  mib: number;
  seconds: number;
  line: string;
}
const reports = new Map<string, Report[]>();

function variant(name: string, extra: string[]): Variant {
  reports.set(name, []);
  return {
    name,
    async once() {
      const cache = tempDir(`mod-import-${name}`);
      const r = await run([bin, "mod", "import", src, "--cache-dir", cache, "--upstream", "off", ...extra], {
        env: { ...process.env, GOSTASH_SUMDB_KEY: db.vkey, GONOSUMDB: "", GOPRIVATE: "" } as Record<string, string>,
      });
      const line = r.stderr.trim().split("\n").find((l) => l.includes(": imported ")) ?? "";
      if (r.code !== 0 || !line) throw new Error(`mod import (${name}) failed:\n${r.stderr.slice(-3000)}`);
      const m = /imported (\d+) files \(([\d.]+) MiB\).* in ([\d.]+)s/.exec(line)!;
      reports.get(name)!.push({ files: Number(m[1]), mib: Number(m[2]), seconds: Number(m[3]), line });
      return { ms: r.ms };
    },
  };
}

try {
  const samples = await interleave(
    [variant("unverified", ["--sumdb", "off"]), variant("verified", ["--sumdb", `${db.name}=${db.url}`])],
    RUNS,
  );
  const counts = await db.counts();
  const lookups = Object.entries(counts).filter(([p]) => p.startsWith("/lookup/")).reduce((a, [, c]) => a + c, 0);
  const tiles = Object.entries(counts).filter(([p]) => p.startsWith("/tile/")).reduce((a, [, c]) => a + c, 0);
  console.log(`mod import of ${MODULES} modules (${MODULES * 3} files), ~${ZIP_KIB} KiB zips, ${RUNS} runs each, medians of the importer's own timing:`);
  const med: Record<string, number> = {};
  for (const s of samples) {
    const rs = reports.get(s.name)!;
    const sec = median(rs.map((r) => r.seconds));
    med[s.name] = sec;
    const r0 = rs[0]!;
    console.log(
      `  ${s.name.padEnd(10)} ${sec.toFixed(2)}s  ${(r0.files / sec).toFixed(0)} files/s  ${(r0.mib / sec).toFixed(1)} MiB/s  (process wall median ${(median(s.ms) / 1000).toFixed(2)}s)`,
    );
  }
  console.log(`  verified / unverified: ${(med.verified! / med.unverified!).toFixed(2)}x the time`);
  console.log(`  database requests over all verified runs: ${lookups} lookups, ${tiles} tiles`);
  console.log(`  last verified report: ${reports.get("verified")!.at(-1)!.line.replace(/^.*?: imported/, "imported")}`);
} finally {
  db.stop();
}
