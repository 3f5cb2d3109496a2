// The real `go` command through `gostash connect` against one `gostash serve`:
// four builds and tests at once, clients that misbehave alongside them, a
// fully cached second round, and every stored entry checked byte for byte.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ENTRY_SIZE, parseEntry } from "../../src/store/disk.ts";
import { BIN, run, tempDir } from "../helpers/env.ts";
import { compileSteps, go, goEnv, writeDemoModule } from "../helpers/go.ts";
import { putLines, randomID, RawClient, startDaemon, type Daemon } from "../daemon/helpers.ts";
import { parsePrometheus, value } from "../http/prom-parse.ts";

const tmp = tempDir("gostash-e2e-daemon-");
const sock = join(tmp.path, "gostash.sock");
const daemonCache = join(tmp.path, "daemon-cache");
let d: Daemon;

// Four small modules: the demo module plus one package that differs per module.
const mods = [0, 1, 2, 3].map((i) => join(tmp.path, `mod${i}`));
const cmds: string[][] = [
  ["build", "-x", "-o", "demo.bin", "./cmd/demo"],
  ["test", "./..."],
  ["build", "-x", "./..."],
  ["test", "-count=1", "./greet", "./mathx"],
];

function envFor(i: number, flags = "") {
  return goEnv({
    gocache: join(tmp.path, `gocache${i}`),
    prog: `${BIN} connect ${flags}${sock}`,
    home: join(tmp.path, `home${i}`),
  });
}

/** What `connect --metrics` says it answered from the daemon's disk itself (0 when it says nothing). */
function answeredHere(stderr: string): number {
  return Number(/gostash connect: (\d+) hit\(s\) answered here from the daemon's disk/.exec(stderr)?.[1] ?? 0);
}

async function localHitsCounted(): Promise<number> {
  return value(parsePrometheus(await (await fetch(`${d.http}/metrics`)).text()), "gostash_hits_total", { tier: "local" }) ?? 0;
}

beforeAll(async () => {
  for (const [i, m] of mods.entries()) {
    writeDemoModule(m);
    writeFileSync(join(m, "greet", "n.go"), `package greet\n\n// N tells the modules apart.\nconst N = ${i}\n`);
  }
  d = await startDaemon([`--plugin=${sock}`, "--http=127.0.0.1:0", `--cache-dir=${daemonCache}`]);
});

afterAll(async () => {
  if (d && d.proc.exitCode === null) await d.stop("SIGKILL");
  tmp.cleanup();
});

/** Every entry in the daemon's cache: output present, size and SHA-256 right. */
function checkEntries(dir: string): number {
  let n = 0;
  for (const sub of readdirSync(dir)) {
    if (!/^[0-9a-f]{2}$/.test(sub)) continue;
    for (const f of readdirSync(join(dir, sub))) {
      if (!f.endsWith("-a")) continue;
      const action = f.slice(0, -2);
      const buf = readFileSync(join(dir, sub, f));
      const e = parseEntry(buf, buf.length, action);
      if (!e) throw new Error(`corrupt entry ${f} (${buf.length} bytes, want ${ENTRY_SIZE})`);
      let out = join(dir, e.outputID.slice(0, 2), `${e.outputID}-d`);
      if (statSync(out).isDirectory()) out = join(out, readdirSync(out)[0]!);
      const bytes = readFileSync(out);
      if (bytes.length !== e.size) throw new Error(`${f}: output has ${bytes.length} bytes, entry says ${e.size}`);
      const sum = createHash("sha256").update(bytes).digest("hex");
      if (sum !== e.outputID) throw new Error(`${f}: output hashes to ${sum}, entry says ${e.outputID}`);
      n++;
    }
  }
  return n;
}

/** Until `stop()`: clients that send garbage or hang up in the middle of a put. */
function misbehave(): { stop: () => Promise<number> } {
  let running = true;
  let count = 0;
  const loop = (async () => {
    while (running) {
      try {
        const g = await RawClient.connect(d.addr);
        await g.send(count % 2 ? "{\"ID\":1,\"Command\":\"get\"}\n\nnot json at all\n" : "\u0000\u0001garbage\n");
        await g.waitClosed(5000);
        const h = await RawClient.connect(d.addr);
        const full = putLines(1, randomID(), new Uint8Array(200_000).fill(count & 0xff));
        await h.send(full.slice(0, 100_000));
        h.kill();
        count++;
      } catch {
        // the daemon refusing us would show up in the builds' results
      }
      await Bun.sleep(50);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return count;
    },
  };
}

describe("go through gostash connect and one daemon", () => {
  test(
    "four go builds/tests at once, with misbehaving clients alongside; then fully cached",
    async () => {
      const bad = misbehave();
      const round1 = await Promise.all(cmds.map((c, i) => go(c, mods[i]!, envFor(i), 400_000)));
      const badClients = await bad.stop();
      for (const [i, r] of round1.entries()) {
        if (r.code !== 0) throw new Error(`round 1, go ${cmds[i]!.join(" ")} failed (${r.code}):\n${r.stderr.slice(-3000)}`);
        expect(r.stderr).not.toContain("gostash connect:");
      }
      expect(badClients).toBeGreaterThan(0);
      // Correct results: the binary runs, the tests passed.
      const demo = await run([join(mods[0]!, "demo.bin")], { timeoutMs: 20_000 });
      expect(demo.stdout).toBe('{"greeting":"hello, WORLD"} 3\n');
      expect(round1[1]!.stdout).toMatch(/ok\s+example.com\/demo\/greet\s/);
      expect(round1[1]!.stdout).toMatch(/ok\s+example.com\/demo\/mathx\s/);
      expect(round1[3]!.stdout).toMatch(/ok\s+example.com\/demo\/mathx\s/);
      expect(compileSteps(round1[2]!.stderr).length).toBeGreaterThan(0);

      const entries = checkEntries(daemonCache);
      expect(entries).toBeGreaterThan(50);

      // Round 2: everything from the daemon's cache. The bridges see its disk (same machine): they answer the
      // hits themselves, and the daemon still counts every one of them.
      const countedBefore = await localHitsCounted();
      const round2 = await Promise.all(
        cmds.map((c, i) => go(c.filter((a) => a !== "-count=1"), mods[i]!, envFor(i, "--metrics "), 300_000)),
      );
      for (const [i, r] of round2.entries()) {
        if (r.code !== 0) throw new Error(`round 2, go ${cmds[i]!.join(" ")} failed (${r.code}):\n${r.stderr.slice(-3000)}`);
        expect(answeredHere(r.stderr)).toBeGreaterThan(10);
      }
      const here = round2.reduce((n, r) => n + answeredHere(r.stderr), 0);
      expect((await localHitsCounted()) - countedBefore).toBeGreaterThanOrEqual(here);
      expect(compileSteps(round2[0]!.stderr)).toEqual([]);
      expect(compileSteps(round2[2]!.stderr)).toEqual([]);
      expect(round2[1]!.stdout).toMatch(/ok\s+example.com\/demo\/greet\s+\(cached\)/);
      expect(round2[1]!.stdout).toMatch(/ok\s+example.com\/demo\/mathx\s+\(cached\)/);
      // Module 3 ran -count=1 in round 1 (never cached): its tests are built from cache now.
      expect(round2[3]!.stdout).toMatch(/ok\s+example.com\/demo\/greet\s/);
      expect(checkEntries(daemonCache)).toBeGreaterThanOrEqual(entries);

      const fams = parsePrometheus(await (await fetch(`${d.http}/metrics`)).text());
      expect(value(fams, "gostash_connections_total")!).toBeGreaterThanOrEqual(8 + 2 * badClients);
      expect(value(fams, "gostash_connection_errors_total")!).toBeGreaterThanOrEqual(badClients);
      expect(value(fams, "gostash_hits_total", { tier: "local" })!).toBeGreaterThan(50);
      expect(value(fams, "gostash_connections")).toBe(0);
      expect((await fetch(`${d.http}/healthz`)).status).toBe(200);
      // A daemon without a bucket still reads hellos: the status page names every go command.
      const status = (await (await fetch(`${d.http}/status.json`)).json()) as { commands: { recent: { command: string | null }[] } };
      const lines = status.commands.recent.map((c) => c.command);
      expect(lines.length).toBeGreaterThanOrEqual(8);
      for (const c of cmds) expect(lines).toContain(`go ${c.join(" ")}`);
    },
    900_000,
  );

  test(
    "local hits: --no-local-hits, or a disk mark that is not the daemon's (another machine's view), send every get through the daemon",
    async () => {
      const build = (flags: string, env: Record<string, string> = {}) =>
        go(["build", "-x", "-o", "demo.bin", "./cmd/demo"], mods[0]!, { ...envFor(0, `--metrics ${flags}`), ...env }, 120_000);
      const on = await build("");
      expect(answeredHere(on.stderr)).toBeGreaterThan(10);
      for (const r of [await build("--no-local-hits "), await build("", { GOSTASH_LOCAL_HITS: "false" })]) {
        expect(r.code).toBe(0);
        expect(answeredHere(r.stderr)).toBe(0);
        expect(compileSteps(r.stderr)).toEqual([]); // every hit still a hit, through the daemon
      }
      writeFileSync(join(daemonCache, "gostash-daemon.mark"), "not this daemon's mark\n");
      const foreign = await build("");
      expect(foreign.code).toBe(0);
      expect(answeredHere(foreign.stderr)).toBe(0);
      expect(compileSteps(foreign.stderr)).toEqual([]);
    },
    300_000,
  );

  test(
    "SIGTERM after the builds: exits 0",
    async () => {
      expect(await d.stop("SIGTERM", 30_000)).toBe(0);
    },
    60_000,
  );
});
