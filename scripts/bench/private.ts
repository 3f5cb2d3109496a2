#!/usr/bin/env bun
// Private modules (--private): what the first fetch of a version costs (the
// daemon runs the go command against version control) against the next one
// (served from the proxy's store), side by side in one run.
//
// A local git repository (made here, --tags tagged versions of a module of
// --files Go files) is reached through a url.insteadOf rule, so git, not the
// network, is what is measured. One `gostash serve --modproxy --private` runs
// throughout; its private module cache is warmed by one untimed fetch (the
// repository clone, paid once per daemon), then each round measures
//
//   http-cold     GET .info, .mod, .zip of a version never asked before (go list -m + go mod download)
//   http-warm     the same three GETs again (store hits)
//   client-direct `go mod download M@V`, GOPROXY=direct, empty GOMODCACHE (a developer without gostash: clones)
//   client-cold   `go mod download M@V` through gostash, a version it has not fetched yet
//   client-warm   `go mod download M@V` through gostash, a version it has stored
//
// Each round uses two fresh versions (one per cold variant), so --runs is
// capped at (--tags - 1) / 2. A warm variant always runs right after its
// cold twin (same version); the pairs and client-direct rotate each round.
//
//   npx bun scripts/bench/private.ts [--runs 7] [--tags 15] [--files 20] [--rebuild] [--keep]

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { makeGitModule, writeGitConfig } from "../../test/modproxy/git.ts";
import {
  die,
  ensureGostash,
  fmtMs,
  freePort,
  intFlag,
  log,
  median,
  parseFlags,
  ratioTable,
  run,
  samplesTable,
  setKeepTemps,
  tempDir,
  type Variant,
  waitHttp,
} from "./lib.ts";

const flags = parseFlags(Bun.argv.slice(2), { runs: "7", tags: "15", files: "20", rebuild: false, keep: false });
setKeepTemps(flags.keep === true);
const tags = intFlag(flags, "tags");
const runs = Math.min(intFlag(flags, "runs"), Math.floor((tags - 1) / 2));
const files = intFlag(flags, "files");
const gostash = ensureGostash({ rebuild: flags.rebuild === true });
const MOD = "private.example.com/bench/lib.git";

const work = tempDir("private");

// ------------------------------------------------------------ the repository

const repo = join(work, "repo");
const versions = Array.from({ length: tags }, (_, t) => `v1.${t}.0`);
await makeGitModule(
  repo,
  versions.map((tag, t) => {
    const text: Record<string, string> = t === 0 ? { "go.mod": `module ${MOD}\n\ngo 1.22\n` } : {};
    for (let f = 0; f < files; f++) {
      // ~4 KB per file, changed by every release.
      const body = Array.from({ length: 100 }, (_, i) => `// line ${i} of file ${f}, release ${t}: lorem ipsum dolor sit amet\n`).join("");
      text[`f${f}.go`] = `package lib\n\n${body}\nconst V${f} = ${t}\n`;
    }
    return { tag, files: text };
  }),
);
const gitConfig = join(work, "gitconfig");
writeGitConfig(gitConfig, { "https://private.example.com/bench/lib": `file://${repo}` });

// ------------------------------------------------------------ the daemon

const baseEnv: Record<string, string> = {};
for (const k of ["PATH", "HOME", "TMPDIR", "LANG", "USER"]) if (process.env[k] !== undefined) baseEnv[k] = process.env[k]!;
Object.assign(baseEnv, { GOENV: "off", GOTOOLCHAIN: "local", GOTELEMETRY: "off", GOFLAGS: "-mod=mod", CGO_ENABLED: "0", GIT_CONFIG_GLOBAL: gitConfig, GIT_CONFIG_NOSYSTEM: "1" });

const cacheDir = join(work, "cache");
const emptyUp = join(work, "empty-upstream");
mkdirSync(emptyUp, { recursive: true });
const port = await freePort();
const daemon = Bun.spawn(
  [gostash, "serve", "--plugin", join(work, "p.sock"), "--http", `127.0.0.1:${port}`, "--cache-dir", cacheDir, "--modproxy", "--upstream", `file://${emptyUp}`, "--sumdb", "off", "--private", "private.example.com"],
  { stdin: "ignore", stdout: "ignore", stderr: "inherit", env: baseEnv },
);
process.once("exit", () => daemon.kill(9));
const proxy = `http://127.0.0.1:${port}/mod`;
await waitHttp(`http://127.0.0.1:${port}/healthz`, daemon, "gostash serve");

async function getAll(v: string): Promise<number> {
  const t0 = performance.now();
  for (const ext of ["info", "mod", "zip"]) {
    const r = await fetch(`${proxy}/${MOD}/@v/${v}.${ext}`);
    if (r.status !== 200) die(`${v}.${ext}: HTTP ${r.status}: ${await r.text()}`);
    await r.arrayBuffer();
  }
  return performance.now() - t0;
}

let modcaches = 0;
async function goDownload(v: string, extra: Record<string, string>): Promise<{ ms: number; cpuMs: number }> {
  const home = join(work, `client-${modcaches++}`);
  const env = { ...baseEnv, HOME: home, GOPATH: join(home, "go"), GOMODCACHE: join(home, "modcache"), GOCACHE: join(work, "gocache"), ...extra };
  const r = await run(["go", "mod", "download", "-json", `${MOD}@${v}`], { env, cwd: work });
  if (r.code !== 0) die(`go mod download ${MOD}@${v} failed:\n${r.stdout}${r.stderr}`);
  return { ms: r.ms, cpuMs: r.cpuMs };
}

// Untimed: the daemon clones the repository into its private module cache.
log(`warm-up: ${fmtMs(await getAll(versions[0]!))} for ${versions[0]} (includes the clone)`);

let httpNext = 1;
let httpLast = versions[0]!;
let clientNext = 0;
let clientLast = versions[0]!;
// The HTTP variants use versions[1..runs], the client ones versions[tags-1] downwards: each cold fetch is a first.
const clientVersions = [...versions].reverse();
const proxied = { GOPROXY: proxy, GOSUMDB: "off", GOPRIVATE: "", GONOSUMDB: "" };
const variants: Variant[] = [
  {
    name: "http-cold",
    once: async () => {
      httpLast = versions[httpNext++]!;
      return { ms: await getAll(httpLast) };
    },
  },
  { name: "http-warm", once: async () => ({ ms: await getAll(httpLast) }) },
  { name: "client-direct", once: () => goDownload(versions[0]!, { GOPROXY: "direct", GOSUMDB: "off", GOPRIVATE: "private.example.com" }) },
  {
    name: "client-cold",
    once: async () => {
      clientLast = clientVersions[clientNext++]!;
      return goDownload(clientLast, proxied);
    },
  },
  { name: "client-warm", once: () => goDownload(clientLast, proxied) },
];
const samples: { name: string; ms: number[]; cpuMs: number[] }[] = variants.map((v) => ({ name: v.name, ms: [], cpuMs: [] }));
for (let r = 0; r < runs; r++) {
  // Cold before warm inside each pair; the pairs and the direct client rotate.
  const groups = [[0, 1], [2], [3, 4]];
  const order = groups.map((_, i) => groups[(i + r) % groups.length]!).flat();
  const parts: string[] = [];
  for (const i of order) {
    const res = await variants[i]!.once();
    samples[i]!.ms.push(res.ms);
    samples[i]!.cpuMs.push(res.cpuMs ?? NaN);
    parts.push(`${variants[i]!.name} ${fmtMs(res.ms)}`);
  }
  log(`round ${r + 1}/${runs}: ${parts.join(", ")}`);
}

const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
const count = (name: string) => Number(new RegExp(`^gostash_${name} (\\S+)$`, "m").exec(metrics)?.[1] ?? NaN);
daemon.kill("SIGTERM");
await daemon.exited;

console.log(`private modules: ${MOD}, ${files} files x ~4 KB per version, ${runs} rounds, go ${(await run(["go", "env", "GOVERSION"], { env: baseEnv })).stdout.trim()}`);
console.log("");
console.log(samplesTable(samples));
console.log("");
console.log(ratioTable(samples, [["http-cold", "http-warm"], ["client-cold", "client-warm"], ["client-direct", "client-warm"], ["client-cold", "client-direct"]]));
console.log("");
console.log(
  `daemon: ${count("modproxy_private_fetches_total")} go commands, ${fmtMs(1000 * count("modproxy_private_seconds_sum"))} in them ` +
    `(${fmtMs((1000 * count("modproxy_private_seconds_sum")) / count("modproxy_private_fetches_total"))} each on average); ` +
    `median first fetch ${fmtMs(median(samples[0]!.ms))} vs from the store ${fmtMs(median(samples[1]!.ms))}`,
);
