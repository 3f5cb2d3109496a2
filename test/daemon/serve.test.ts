// `gostash serve` as a process: addresses, HTTP, signals and shutdown.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { BIN, run, tempDir } from "../helpers/env.ts";
import { parsePrometheus, value } from "../http/prom-parse.ts";
import { closeLine, getLine, putLines, randomID, RawClient, type Daemon } from "./helpers.ts";
import { startDaemon } from "./helpers.ts";

let tmp: ReturnType<typeof tempDir>;
let d: Daemon | null = null;

beforeEach(() => {
  tmp = tempDir("gostash-serve-");
});

afterEach(async () => {
  if (d && d.proc.exitCode === null) await d.stop("SIGKILL");
  d = null;
  tmp.cleanup();
});

describe("gostash serve", () => {
  test("SIGTERM: stops accepting, keeps serving the open conversation, exits 0 once it ends", async () => {
    const sock = join(tmp.path, "d.sock");
    d = await startDaemon([`--plugin=${sock}`, "--http=127.0.0.1:0", `--cache-dir=${join(tmp.path, "cache")}`]);
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    expect((await fetch(`${d.http}/healthz`)).status).toBe(200);
    const c = await RawClient.connect(d.addr);
    const a = randomID();
    await c.send(putLines(1, a, new Uint8Array(5000).fill(7)));
    await c.response(1);

    d.proc.kill("SIGTERM");
    // The listener goes away (socket file removed), /healthz turns 503.
    for (let i = 0; i < 100 && existsSync(sock); i++) await Bun.sleep(20);
    expect(existsSync(sock)).toBe(false);
    expect((await fetch(`${d.http}/healthz`)).status).toBe(503);
    await expect(RawClient.connect(d.addr)).rejects.toThrow();
    // The connected client still gets answers.
    await c.send(getLine(2, a) + closeLine(3));
    expect((await c.response(2)).Size).toBe(5000);
    expect(await c.response(3)).toEqual({ ID: 3 });
    expect(d.proc.exitCode).toBe(null);
    c.halfClose();
    const t = setTimeout(() => d!.proc.kill(9), 20_000);
    const code = await d.proc.exited;
    clearTimeout(t);
    expect(code).toBe(0);
    expect(d.stderr()).toContain("stopped (SIGTERM)");
  }, 60_000);

  test("--shutdown-timeout cuts a client that never finishes; SIGINT works too", async () => {
    d = await startDaemon(["--plugin=0", `--cache-dir=${join(tmp.path, "cache")}`, "--shutdown-timeout=300ms"]);
    expect(d.plugin).toMatch(/^127\.0\.0\.1:\d+$/);
    const c = await RawClient.connect(d.addr);
    await c.send(getLine(1, randomID()));
    expect((await c.response(1)).Miss).toBe(true);
    expect(await d.stop("SIGINT", 20_000)).toBe(0);
    expect(await c.waitClosed(5000)).toBe(true);
    expect(d.stderr()).toContain("still open after 300ms");
  }, 60_000);

  test("/metrics of a running daemon parses strictly and counts its traffic", async () => {
    d = await startDaemon([`--plugin=${join(tmp.path, "d.sock")}`, "--http=0", `--cache-dir=${join(tmp.path, "cache")}`]);
    expect(d.http).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const c = await RawClient.connect(d.addr);
    const a = randomID();
    await c.send(getLine(1, a) + putLines(2, a, new Uint8Array(100)) + getLine(3, a));
    await c.response(3);
    const fams = parsePrometheus(await (await fetch(`${d.http}/metrics`)).text());
    expect(value(fams, "gostash_gets_total")).toBe(2);
    expect(value(fams, "gostash_hits_total", { tier: "local" })).toBe(1);
    expect(value(fams, "gostash_misses_total")).toBe(1);
    expect(value(fams, "gostash_puts_total")).toBe(1);
    expect(value(fams, "gostash_connections")).toBe(1);
    expect(value(fams, "gostash_get_seconds_count")).toBe(2);
    const vars = (await (await fetch(`${d.http}/debug/vars`)).json()) as Record<string, any>;
    expect(vars.cache_dir).toBe(join(tmp.path, "cache"));
    expect(vars.metrics.puts).toBe(1);
    c.halfClose();
    await c.waitClosed();
    expect(await d.stop()).toBe(0);
  }, 60_000);

  test("usage errors: no --plugin, a bad address, a port in use", async () => {
    const none = await run([BIN, "serve"], { env: { GOCACHE_PLUGIN: "" }, timeoutMs: 20_000 });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("--plugin");
    const bad = await run([BIN, "serve", "--plugin=nope:nope"], { timeoutMs: 20_000 });
    expect(bad.code).toBe(2);
    const holder = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const busy = await run([BIN, "serve", `--plugin=${holder.port}`, `--cache-dir=${tmp.path}`], { timeoutMs: 20_000 });
    holder.stop(true);
    // A port in use is a start-up failure (exit 1), not a usage error (issue #15, item 8).
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain("cannot listen on 127.0.0.1:");
    expect(busy.stderr).not.toContain("config:");
    expect(busy.stdout).toBe("");
  }, 60_000);
});
