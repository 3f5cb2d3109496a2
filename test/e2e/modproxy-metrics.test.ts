// The module proxy's metrics against what the real go command received.
// `go mod download` of a few modules runs three times through
// `gostash serve --modproxy`, each time with a fresh GOMODCACHE and no
// go.sum (so every checksum is looked up through the proxy's sumdb):
//
//   cold      empty cache: every zip streams to the client while it downloads
//   warm      the same daemon: everything from its disk
//   offline   a new daemon with --offline on that cache, upstream and
//             checksum database stopped
//
// What the go command received is what it saved in GOMODCACHE/cache/download:
// one .info, .mod and .zip per module (one request each) and the sumdb
// lookups and tiles under sumdb/<name>/ (one request each; GOSUMDB names the
// proxy's URL, so there is no "supported" probe). Each metric family on
// /metrics (and the same counter on /debug/vars) must match it exactly.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { walkFiles } from "../../src/modproxy/transfer/tree.ts";
import { startDaemon, type Daemon } from "../daemon/helpers.ts";
import { tempDir } from "../helpers/env.ts";
import { parsePrometheus, value } from "../http/prom-parse.ts";
import { goOK, modproxyServeArgs, proxyClientEnv } from "../modproxy/client.ts";
import { startSumdb, startUpstream, writeApp, writeModule, writeTestModules, type Sumdb, type Upstream } from "../modproxy/helpers.ts";

type Mode = "cold" | "warm" | "offline";
const MODES: Mode[] = ["cold", "warm", "offline"];

/** What one go command received, from its GOMODCACHE. */
interface Received {
  moduleFiles: number;
  moduleBytes: number;
  sumdbFiles: number;
  sumdbBytes: number;
}

/** Counter deltas of one run, from /metrics, checked against /debug/vars. */
type Counters = Record<string, number>;

const FAMILIES = ["modproxy_requests", "modproxy_bytes_served", "modproxy_hits", "modproxy_misses", "sumdb_requests", "sumdb_bytes_served", "sumdb_hits", "sumdb_misses"];
const MODULES = ["example.com/lib@v1.1.0", "example.com/dep@v1.0.0", "example.com/Upper/Case@v1.0.0", "example.com/big@v1.0.0"];

let root: ReturnType<typeof tempDir>;
let up: Upstream;
let db: Sumdb;
const received = new Map<Mode, Received>();
const counted = new Map<Mode, Counters>();

function receivedIn(modcache: string): Received {
  const dl = join(modcache, "cache", "download");
  const r: Received = { moduleFiles: 0, moduleBytes: 0, sumdbFiles: 0, sumdbBytes: 0 };
  for (const rel of walkFiles(dl)) {
    const size = statSync(join(dl, rel)).size;
    if (rel.startsWith("sumdb/")) {
      if (rel.includes(".lock")) continue;
      r.sumdbFiles++;
      r.sumdbBytes += size;
    } else if (/\.(info|mod|zip)$/.test(rel)) {
      r.moduleFiles++;
      r.moduleBytes += size;
    }
  }
  return r;
}

async function counters(daemon: Daemon): Promise<Counters> {
  const fams = parsePrometheus(await (await fetch(`${daemon.http}/metrics`)).text());
  const vars = ((await (await fetch(`${daemon.http}/debug/vars`)).json()) as { metrics: Record<string, number> }).metrics;
  const out: Counters = {};
  for (const f of FAMILIES) {
    out[f] = value(fams, `gostash_${f}_total`) ?? 0;
    expect(vars[f] ?? 0, `/debug/vars ${f}`).toBe(out[f]!);
  }
  return out;
}

function minus(a: Counters, b: Counters): Counters {
  return Object.fromEntries(FAMILIES.map((f) => [f, a[f]! - (b[f] ?? 0)]));
}

/** `go mod download` of MODULES with a fresh GOMODCACHE and app (no go.sum); returns what landed. */
async function download(daemon: Daemon, name: string): Promise<Received> {
  const home = join(root.path, `home-${name}`);
  const app = join(root.path, `app-${name}`);
  writeApp(app);
  const env = proxyClientEnv({ gocache: join(root.path, "gocache"), home, proxy: `${daemon.http}/mod`, db });
  await goOK(["mod", "download", ...MODULES], app, env, daemon);
  return receivedIn(join(home, "gopath", "pkg", "mod"));
}

beforeAll(async () => {
  root = tempDir("gostash-modproxy-metrics-");
  const upDir = join(root.path, "up");
  writeTestModules(upDir);
  // Big enough to stream in many chunks.
  const payload = Array.from({ length: 60_000 }, (_, i) => `line ${i} ${Math.sin(i)}\n`).join("");
  writeModule(upDir, { path: "example.com/big", version: "v1.0.0", files: { "data.txt": payload, "big.go": "package big\n" } });
  // The go command saves an .info as json.Marshal writes it (no final newline):
  // the upstream serves them so, for what it saves to be what it received.
  for (const rel of walkFiles(upDir)) {
    if (rel.endsWith(".info")) writeFileSync(join(upDir, rel), JSON.stringify(JSON.parse(readFileSync(join(upDir, rel), "utf8"))));
  }
  up = startUpstream(upDir);
  db = await startSumdb(upDir);
  const serve = { sock: join(root.path, "plugin.sock"), cacheDir: join(root.path, "cache"), up, db };

  const online = await startDaemon(modproxyServeArgs(serve));
  try {
    const before = await counters(online);
    received.set("cold", await download(online, "cold"));
    const afterCold = await counters(online);
    counted.set("cold", minus(afterCold, before));
    received.set("warm", await download(online, "warm"));
    counted.set("warm", minus(await counters(online), afterCold));
  } finally {
    await online.stop();
  }
  up.stop();
  db.stop();

  const offline = await startDaemon(modproxyServeArgs({ ...serve, sock: join(root.path, "plugin2.sock") }, ["--offline"]));
  try {
    const before = await counters(offline);
    received.set("offline", await download(offline, "offline"));
    counted.set("offline", minus(await counters(offline), before));
  } finally {
    await offline.stop();
  }
}, 600_000);

afterAll(() => {
  up?.stop();
  db?.stop();
  root?.cleanup();
});

/** The counter equals what the go command received, in every mode. */
function expectCounted(counter: string, of: (r: Received) => number): void {
  for (const m of MODES) expect(counted.get(m)![counter], m).toBe(of(received.get(m)!));
}

/** Every answer a miss when cold (fetched, streamed), a hit warm and offline. */
function expectHitsAndMisses(family: "modproxy" | "sumdb", files: (r: Received) => number): void {
  for (const m of MODES) {
    const c = counted.get(m)!;
    const n = files(received.get(m)!);
    expect([c[`${family}_hits`], c[`${family}_misses`]], m).toEqual(m === "cold" ? [0, n] : [n, 0]);
  }
}

describe("module proxy metrics match what go mod download received", () => {
  test("the go command received the same files in every mode", () => {
    const cold = received.get("cold")!;
    expect(cold.moduleFiles).toBe(3 * MODULES.length);
    expect(cold.moduleBytes).toBeGreaterThan(1_000_000);
    expect(cold.sumdbFiles).toBeGreaterThan(MODULES.length);
    for (const m of MODES) expect(received.get(m), m).toEqual(cold);
  });

  test("gostash_modproxy_requests_total: one per .info, .mod and .zip", () => {
    expectCounted("modproxy_requests", (r) => r.moduleFiles);
  });

  test("gostash_modproxy_bytes_served_total: every byte, streamed while fetching, from disk, offline", () => {
    expectCounted("modproxy_bytes_served", (r) => r.moduleBytes);
  });

  test("gostash_modproxy_hits_total and _misses_total: all misses cold, all hits warm and offline", () => {
    expectHitsAndMisses("modproxy", (r) => r.moduleFiles);
  });

  test("gostash_sumdb_requests_total: one per lookup and tile, offline too", () => {
    expectCounted("sumdb_requests", (r) => r.sumdbFiles);
  });

  test("gostash_sumdb_bytes_served_total: every lookup and tile byte, offline too", () => {
    expectCounted("sumdb_bytes_served", (r) => r.sumdbBytes);
  });

  test("gostash_sumdb_hits_total and _misses_total: all misses cold, all hits warm and offline", () => {
    expectHitsAndMisses("sumdb", (r) => r.sumdbFiles);
  });
});
