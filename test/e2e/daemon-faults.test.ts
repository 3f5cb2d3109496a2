// What a build sees when the daemon is not there, or dies under it.
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { BIN, run, tempDir } from "../helpers/env.ts";
import { go, goEnv, writeDemoModule } from "../helpers/go.ts";
import { startDaemon } from "../daemon/helpers.ts";
import { parsePrometheus, value } from "../http/prom-parse.ts";

const tmp = tempDir("gostash-e2e-daemon-faults-");
afterAll(() => tmp.cleanup());

function entries(dir: string): number {
  let n = 0;
  for (const sub of readdirSync(dir)) {
    if (/^[0-9a-f]{2}$/.test(sub)) n += readdirSync(join(dir, sub)).filter((f) => f.endsWith("-a")).length;
  }
  return n;
}

describe("daemon faults", () => {
  test(
    "daemon down: connect says so once and the build succeeds from the local cache",
    async () => {
      const mod = join(tmp.path, "down");
      writeDemoModule(mod);
      const local = join(tmp.path, "down-local-cache");
      const env = goEnv({
        gocache: join(tmp.path, "down-gocache"),
        prog: `${BIN} connect ${join(tmp.path, "no-daemon.sock")}`,
        home: join(tmp.path, "down-home"),
        extra: { GOCACHE_DIR: local },
      });
      const r = await go(["build", "./..."], mod, env, 400_000);
      if (r.code !== 0) throw new Error(`go build failed (${r.code}):\n${r.stderr.slice(-3000)}`);
      expect(r.stderr.match(/cannot reach the daemon/g)?.length).toBe(1);
      expect(entries(local)).toBeGreaterThan(10);
      // And again: served from what the first run stored.
      const again = await go(["build", "-x", "./..."], mod, env, 120_000);
      expect(again.code).toBe(0);
      expect(again.stderr).not.toMatch(/\/compile /);
    },
    600_000,
  );

  test(
    "daemon stopped (SIGSTOP: its socket still accepts): connect waits --dial-timeout for its capability line, then the local cache serves the build",
    async () => {
      const w = await daemonWorld("stopped", { GOSTASH_DIAL_TIMEOUT: "1s" });
      w.daemon.proc.kill("SIGSTOP");
      try {
        const r = await w.build();
        expect(r.stderr.match(/cannot reach the daemon at .*stopped\.sock \(it said nothing within 1000 ms of the connection\)/g)?.length).toBe(1);
        expect(entries(w.fallback)).toBeGreaterThan(10);
      } finally {
        w.daemon.proc.kill("SIGCONT");
        await w.daemon.stop("SIGKILL");
      }
    },
    400_000,
  );

  test(
    "daemon stopped mid-build (SIGSTOP): after --answer-timeout connect finishes the build from the local cache",
    async () => {
      const w = await daemonWorld("paused", { GOSTASH_ANSWER_TIMEOUT: "2s" });
      try {
        const r = await w.build(() => w.daemon.proc.kill("SIGSTOP"));
        expect(r.stderr.match(/stopped answering \(nothing for 2\.\ds with \d+ request\(s\) unanswered; --answer-timeout\).*finishing this build from the local cache/g)?.length).toBe(1);
        await w.demoRuns();
      } finally {
        w.daemon.proc.kill("SIGCONT");
        await w.daemon.stop("SIGKILL");
      }
    },
    400_000,
  );

  test(
    "daemon killed mid-build: connect finishes the build from the local cache; it never hangs",
    async () => {
      const w = await daemonWorld("killed");
      const r = await w.build(async () => {
        w.daemon.proc.kill(9);
        await w.daemon.proc.exited;
      });
      if (process.env.GOSTASH_TEST_VERBOSE) console.error(r.stderr);
      expect(r.stderr.match(/finishing this build from the local cache/g)?.length).toBe(1);
      await w.demoRuns();
    },
    400_000,
  );
});

/**
 * A daemon on its own socket, the demo module, and a go command through
 * connect whose local fallback cache is `fallback`. build(fault) builds
 * cmd/demo; with a fault, it strikes once the daemon has stored 3 puts of
 * that build. run() kills at its timeout (exit 137): the build must end by
 * itself, and succeed.
 */
async function daemonWorld(name: string, extra: Record<string, string> = {}) {
  const mod = join(tmp.path, name);
  writeDemoModule(mod);
  const sock = join(tmp.path, `${name}.sock`);
  const daemon = await startDaemon([`--plugin=${sock}`, "--http=0", `--cache-dir=${join(tmp.path, `${name}-cache`)}`]);
  const fallback = join(tmp.path, `${name}-fallback`);
  const env = goEnv({ gocache: join(tmp.path, `${name}-gocache`), prog: `${BIN} connect ${sock}`, home: join(tmp.path, `${name}-home`), extra: { GOCACHE_DIR: fallback, ...extra } });
  return {
    daemon,
    fallback,
    async build(fault?: () => unknown) {
      const build = go(["build", "-o", "demo.bin", "./cmd/demo"], mod, env, 300_000);
      if (fault) {
        expect(await putsReach(daemon.http!, 3)).toBe(true);
        await fault();
      }
      const r = await build;
      if (r.code !== 0) throw new Error(`go build failed (${r.code}):\n${r.stderr.slice(-3000)}`);
      return r;
    },
    async demoRuns() {
      const demo = await run([join(mod, "demo.bin")], { timeoutMs: 20_000 });
      expect(demo.stdout).toBe('{"greeting":"hello, WORLD"} 3\n');
      expect(entries(fallback)).toBeGreaterThan(0);
    },
  };
}

/** Waits (up to a minute) until the daemon has stored n puts. */
async function putsReach(http: string, n: number): Promise<boolean> {
  for (let i = 0; i < 3000; i++) {
    try {
      if ((value(parsePrometheus(await (await fetch(`${http}/metrics`)).text()), "gostash_puts_total") ?? 0) >= n) return true;
    } catch {}
    await Bun.sleep(20);
  }
  return false;
}
