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
      const mod = join(tmp.path, "stopped");
      writeDemoModule(mod);
      const sock = join(tmp.path, "stopped.sock");
      const d = await startDaemon([`--plugin=${sock}`, "--http=0", `--cache-dir=${join(tmp.path, "stopped-cache")}`]);
      const fallback = join(tmp.path, "stopped-fallback");
      const env = goEnv({
        gocache: join(tmp.path, "stopped-gocache"),
        prog: `${BIN} connect ${sock}`,
        home: join(tmp.path, "stopped-home"),
        extra: { GOCACHE_DIR: fallback, GOSTASH_DIAL_TIMEOUT: "1s" },
      });
      d.proc.kill("SIGSTOP");
      try {
        const r = await go(["build", "./..."], mod, env, 300_000);
        if (r.code !== 0) throw new Error(`go build failed (${r.code}):\n${r.stderr.slice(-3000)}`);
        expect(r.stderr.match(/cannot reach the daemon at .*stopped\.sock \(it said nothing within 1000 ms of the connection\)/g)?.length).toBe(1);
        expect(entries(fallback)).toBeGreaterThan(10);
      } finally {
        d.proc.kill("SIGCONT");
        await d.stop("SIGKILL");
      }
    },
    400_000,
  );

  test(
    "daemon stopped mid-build (SIGSTOP): after --answer-timeout connect finishes the build from the local cache",
    async () => {
      const mod = join(tmp.path, "paused");
      writeDemoModule(mod);
      const sock = join(tmp.path, "paused.sock");
      const d = await startDaemon([`--plugin=${sock}`, "--http=0", `--cache-dir=${join(tmp.path, "paused-cache")}`]);
      const fallback = join(tmp.path, "paused-fallback");
      const env = goEnv({
        gocache: join(tmp.path, "paused-gocache"),
        prog: `${BIN} connect ${sock}`,
        home: join(tmp.path, "paused-home"),
        extra: { GOCACHE_DIR: fallback, GOSTASH_ANSWER_TIMEOUT: "2s" },
      });
      try {
        const build = go(["build", "-o", "demo.bin", "./cmd/demo"], mod, env, 300_000);
        let puts = 0;
        for (let i = 0; i < 3000 && puts < 3; i++) {
          await Bun.sleep(20);
          try {
            puts = value(parsePrometheus(await (await fetch(`${d.http}/metrics`)).text()), "gostash_puts_total") ?? 0;
          } catch {}
        }
        expect(puts).toBeGreaterThanOrEqual(3);
        d.proc.kill("SIGSTOP");
        const r = await build;
        if (r.code !== 0) throw new Error(`go build failed (${r.code}):\n${r.stderr.slice(-3000)}`);
        expect(r.stderr.match(/stopped answering \(nothing for 2\.\ds with \d+ request\(s\) unanswered; --answer-timeout\).*finishing this build from the local cache/g)?.length).toBe(1);
        const demo = await run([join(mod, "demo.bin")], { timeoutMs: 20_000 });
        expect(demo.stdout).toBe('{"greeting":"hello, WORLD"} 3\n');
        expect(entries(fallback)).toBeGreaterThan(0);
      } finally {
        d.proc.kill("SIGCONT");
        await d.stop("SIGKILL");
      }
    },
    400_000,
  );

  test(
    "daemon killed mid-build: connect finishes the build from the local cache; it never hangs",
    async () => {
      const mod = join(tmp.path, "killed");
      writeDemoModule(mod);
      const sock = join(tmp.path, "killed.sock");
      const d = await startDaemon([`--plugin=${sock}`, "--http=0", `--cache-dir=${join(tmp.path, "killed-cache")}`]);
      const fallback = join(tmp.path, "killed-fallback");
      const env = goEnv({
        gocache: join(tmp.path, "killed-gocache"),
        prog: `${BIN} connect ${sock}`,
        home: join(tmp.path, "killed-home"),
        extra: { GOCACHE_DIR: fallback },
      });
      const build = go(["build", "-o", "demo.bin", "./cmd/demo"], mod, env, 300_000);
      let puts = 0;
      for (let i = 0; i < 3000 && puts < 3; i++) {
        await Bun.sleep(20);
        try {
          puts = value(parsePrometheus(await (await fetch(`${d.http}/metrics`)).text()), "gostash_puts_total") ?? 0;
        } catch {}
      }
      expect(puts).toBeGreaterThanOrEqual(3);
      d.proc.kill(9);
      await d.proc.exited;
      const r = await build;
      if (process.env.GOSTASH_TEST_VERBOSE) console.error(r.stderr);
      // run() kills at its timeout (exit 137): the build must end by itself, and succeed.
      if (r.code !== 0) throw new Error(`go build failed (${r.code}):\n${r.stderr.slice(-3000)}`);
      expect(r.stderr.match(/finishing this build from the local cache/g)?.length).toBe(1);
      const demo = await run([join(mod, "demo.bin")], { timeoutMs: 20_000 });
      expect(demo.stdout).toBe('{"greeting":"hello, WORLD"} 3\n');
      expect(entries(fallback)).toBeGreaterThan(0);
    },
    400_000,
  );
});
