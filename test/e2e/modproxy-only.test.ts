// `gostash serve --http=ADDR --modproxy` with no --plugin (issue #15, item
// 9): a module proxy alone, no build cache and no plugin socket. The real go
// command downloads and builds a module graph through it from a local
// upstream.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { BIN, tempDir } from "../helpers/env.ts";
import { go, goEnv } from "../helpers/go.ts";
import { startUpstream, writeApp, writeTestModules, type Upstream } from "../modproxy/helpers.ts";

const tmp = tempDir("gostash-modproxy-only-");
let up: Upstream;

beforeAll(() => {
  writeTestModules(join(tmp.path, "up"));
  up = startUpstream(join(tmp.path, "up"));
});
afterAll(() => {
  up?.stop();
  tmp.cleanup();
});

/** Starts serve and waits for its start-up line. */
async function serve(args: string[]): Promise<{ proc: Bun.Subprocess<"ignore", "pipe", "pipe">; line: string; stderr: () => string }> {
  // No bucket, whatever other test files left in process.env.
  const env = { ...process.env, GOCACHE_S3_BUCKET: "" } as Record<string, string>;
  const proc = Bun.spawn([BIN, "serve", ...args], { env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let err = "";
  const dec = new TextDecoder();
  const line = await new Promise<string>((resolve) => {
    const timer = setTimeout(() => proc.kill(9), 15_000);
    void (async () => {
      for await (const chunk of proc.stderr) {
        err += dec.decode(chunk, { stream: true });
        const m = /gostash serve: .*\n/.exec(err);
        if (m) {
          clearTimeout(timer);
          resolve(m[0]);
        }
      }
      resolve("");
    })();
  });
  if (!line) throw new Error(`serve did not start (exit ${await proc.exited}):\n${err}`);
  return { proc, line, stderr: () => err };
}

test("--http with --modproxy and no --plugin serves the go command's module downloads; no build cache", async () => {
  const cacheDir = join(tmp.path, "cache");
  const s = await serve(["--http=127.0.0.1:0", "--modproxy", `--upstream=${up.url}`, "--sumdb=off", `--cache-dir=${cacheDir}`]);
  try {
    expect(s.line).toMatch(/^gostash serve: module proxy only \(no --plugin\), http on http:\/\/127\.0\.0\.1:\d+, store .*\/modproxy\n$/);
    const http = /http on (http:\/\/[^,\n]+)/.exec(s.line)![1]!;
    expect((await fetch(`${http}/healthz`)).status).toBe(200);
    const app = join(tmp.path, "app");
    writeApp(app);
    const env = goEnv({
      gocache: join(tmp.path, "gocache"),
      home: join(tmp.path, "home"),
      extra: { GOPROXY: `${http}/mod`, GOSUMDB: "off", GOFLAGS: "-mod=mod" },
    });
    const get = await go(["get", "example.com/lib@v1.1.0", "example.com/Upper/Case@v1.0.0"], app, env, 240_000);
    expect(get.code, get.stderr).toBe(0);
    const b = await go(["build", "-o", "app", "."], app, env, 240_000);
    expect(b.code, b.stderr).toBe(0);
    expect(Bun.spawnSync([join(app, "app")]).stdout.toString().trim()).toBe("42 Upper/Case");
    expect(up.count("/example.com/lib/@v/v1.1.0.zip")).toBe(1);
    // The module store is there; no build-cache entry directory was made.
    expect(existsSync(join(cacheDir, "modproxy", "example.com", "lib", "@v", "v1.1.0.zip"))).toBe(true);
    expect(readdirSync(cacheDir).filter((d) => /^[0-9a-f]{2}$/.test(d))).toEqual([]);
  } finally {
    s.proc.kill("SIGTERM");
  }
  expect(await s.proc.exited).toBe(0);
  expect(s.stderr()).toContain("gostash serve: stopped (SIGTERM)");
}, 400_000);

test("without --plugin and without --modproxy, serve says what it needs and why", async () => {
  const p = Bun.spawnSync([BIN, "serve", "--http=127.0.0.1:0"], { stderr: "pipe", timeout: 30_000 });
  expect(p.exitCode).toBe(2);
  expect(p.stderr.toString()).toBe(
    "gostash: config: serve needs --plugin=PORT|SOCKET (or GOCACHE_PLUGIN): the socket `gostash connect` reaches the build cache on; " +
      "for a module proxy alone, give --http=ADDR --modproxy instead\nRun 'gostash serve --help' for usage.\n",
  );
}, 60_000);
