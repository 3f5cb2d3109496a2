// Token checks (constant-time, both tokens), HTTP credential parsing and the
// HTTP wrapper; the plugin-socket handshake and read-only connections against
// an in-process plugin server over a real Unix socket.
import { afterAll, beforeAll, describe, expect, spyOn, test } from "bun:test";
import crypto from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { createReadOnlyHandler } from "../../src/buildcache/readonly.ts";
import { requireHttpAuth, TokenChecker, tokenFromRequest } from "../../src/auth/token.ts";
import { startPluginServer, type PluginServer } from "../../src/daemon/server.ts";
import { redactArgs } from "../../src/http/handler.ts";
import { createDiskStore } from "../../src/store/disk.ts";
import { createLocalCache } from "../../src/buildcache/local.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { tempDir } from "../helpers/env.ts";
import { getLine, putLines, randomID, sha256hex } from "../daemon/helpers.ts";
import type { S3Config } from "../../src/config/config.ts";
import { RemoteError } from "../../src/s3/errors.ts";
import { failureHint } from "../../src/s3/hints.ts";
import { UpstreamError } from "../../src/modproxy/upstream/fetch.ts";

const tmp = tempDir("gostash-auth-");
afterAll(() => tmp.cleanup());

describe("TokenChecker", () => {
  test("no tokens: everyone may do everything", () => {
    const c = new TokenChecker({});
    expect(c.required).toBe(false);
    expect(c.check(null)).toBe("rw");
  });

  test("read-write and read-only tokens; wrong, missing, prefixes and extensions refused", () => {
    const c = new TokenChecker({ token: "rw-secret", readToken: "ro-secret" });
    expect(c.required).toBe(true);
    expect(c.check("rw-secret")).toBe("rw");
    expect(c.check("ro-secret")).toBe("ro");
    for (const bad of [null, "", "rw-secre", "rw-secret ", "rw-secretx", "RW-SECRET", "ro-secret\n", "x".repeat(5000)]) {
      expect(c.check(bad)).toBe("none");
    }
    const onlyRO = new TokenChecker({ readToken: "r" });
    expect(onlyRO.check("r")).toBe("ro");
    expect(onlyRO.check("rw")).toBe("none");
  });

  test("comparison is crypto.timingSafeEqual on equal-length digests, both tokens checked every time", () => {
    const spy = spyOn(crypto, "timingSafeEqual");
    try {
      const c = new TokenChecker({ token: "short", readToken: "a-much-longer-read-token" });
      for (const given of ["short", "a-much-longer-read-token", "x", "y".repeat(300)]) {
        spy.mockClear();
        c.check(given);
        expect(spy).toHaveBeenCalledTimes(2);
        for (const call of spy.mock.calls) {
          const [a, b] = call as unknown as [Buffer, Buffer];
          expect(a.length).toBe(32);
          expect(b.length).toBe(32);
        }
      }
    } finally {
      spy.mockRestore();
    }
  });

  test("same token twice, whitespace or control characters are configuration errors", () => {
    expect(() => new TokenChecker({ token: "a", readToken: "a" })).toThrow(/must differ/);
    expect(() => new TokenChecker({ token: "a b" })).toThrow(/--token/);
    expect(() => new TokenChecker({ readToken: "a\nb" })).toThrow(/--read-token/);
  });
});

describe("HTTP credentials", () => {
  const req = (auth?: string, method = "GET", path = "/metrics") =>
    new Request(`http://127.0.0.1${path}`, { method, headers: auth ? { Authorization: auth } : {} });
  const basic = (s: string) => `Basic ${Buffer.from(s).toString("base64")}`;

  test("Bearer, Basic with the token as password, Basic with the token as the only user name", () => {
    expect(tokenFromRequest(req("Bearer tok"))).toBe("tok");
    expect(tokenFromRequest(req("bearer tok"))).toBe("tok");
    expect(tokenFromRequest(req(basic("user:tok")))).toBe("tok");
    expect(tokenFromRequest(req(basic("tok:")))).toBe("tok");
    expect(tokenFromRequest(req(basic("tok")))).toBe("tok");
    expect(tokenFromRequest(req(basic("user:pa:ss")))).toBe("pa:ss");
    expect(tokenFromRequest(req())).toBeNull();
    expect(tokenFromRequest(req("Digest x"))).toBeNull();
    expect(tokenFromRequest(req("Bearer"))).toBeNull();
  });

  test("wrapper: /healthz open, 401 without a good token, read-only token GET/HEAD only", async () => {
    let reached = 0;
    const refused: string[] = [];
    const h = requireHttpAuth(
      new TokenChecker({ token: "rw", readToken: "ro" }),
      () => {
        reached++;
        return new Response("ok");
      },
      (why) => refused.push(why),
    );
    expect((await h(req(undefined, "GET", "/healthz"))).status).toBe(200);
    const r401 = await h(req());
    expect(r401.status).toBe(401);
    expect(r401.headers.get("www-authenticate")).toContain("Basic");
    expect((await h(req("Bearer nope"))).status).toBe(401);
    expect((await h(req(basic("u:nope")))).status).toBe(401);
    expect((await h(req("Bearer rw"))).status).toBe(200);
    expect((await h(req(basic("u:rw"), "POST"))).status).toBe(200);
    expect((await h(req("Bearer ro", "GET", "/mod/example.com/x/@v/list"))).status).toBe(200);
    expect((await h(req("Bearer ro", "HEAD"))).status).toBe(200);
    for (const m of ["POST", "PUT", "DELETE", "PATCH"]) expect((await h(req(basic("u:ro"), m))).status).toBe(403);
    expect(reached).toBe(5);
    expect(refused).toEqual(["unauthorized", "unauthorized", "unauthorized", "forbidden", "forbidden", "forbidden", "forbidden"]);
    // No tokens configured: the handler itself.
    const open = () => new Response("x");
    expect(requireHttpAuth(new TokenChecker({}), open)).toBe(open);
  });

  test("/debug/vars command line hides token values", () => {
    expect(redactArgs(["gostash", "serve", "--token=abc", "--read-token", "def", "--plugin=1"])).toEqual([
      "gostash",
      "serve",
      "--token=***",
      "--read-token",
      "***",
      "--plugin=1",
    ]);
  });

  test("/debug/vars command line, S3 hints and upstream errors hide passwords in URLs, keeping where they point", () => {
    expect(redactArgs(["gostash", "serve", "--upstream=https://user:pw@proxy.example.com", "--s3-endpoint-url", "http://AKIAXX:SECRETKEY@127.0.0.1:1"])).toEqual([
      "gostash",
      "serve",
      "--upstream=https://user:***@proxy.example.com",
      "--s3-endpoint-url",
      "http://AKIAXX:***@127.0.0.1:1",
    ]);
    const cfg = { endpoint: "http://AKIAXX:SECRETKEY@127.0.0.1:1", timeoutMs: 5000 } as S3Config;
    for (const kind of ["network", "timeout"] as const) {
      const hint = failureHint(new RemoteError(kind, "s3: get x: failed"), cfg);
      expect(hint).toContain("http://AKIAXX:***@127.0.0.1:1");
      expect(hint).not.toContain("SECRETKEY");
    }
    expect(new UpstreamError("https://user:pw@proxy.example.com/m/@v/list: HTTP 500").message).toBe("https://user:***@proxy.example.com/m/@v/list: HTTP 500");
  });
});

/** A minimal raw client: collects every line the daemon sends. */
async function rawConnect(path: string) {
  const lines: string[] = [];
  let buf = "";
  let closed = false;
  let onClose: (() => void) | null = null;
  const sock = await Bun.connect({
    unix: path,
    allowHalfOpen: true,
    socket: {
      data(_s, d) {
        buf += d.toString();
        for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
          lines.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      },
      end(s) {
        s.end();
      },
      close() {
        closed = true;
        onClose?.();
      },
      error() {},
    },
  });
  return {
    lines,
    send: (t: string) => sock.write(t),
    halfClose: () => sock.shutdown(),
    kill: () => sock.terminate(),
    closed: () =>
      closed
        ? Promise.resolve()
        : new Promise<void>((r, j) => {
            const t = setTimeout(() => j(new Error("not closed within 10s")), 10_000);
            onClose = () => {
              clearTimeout(t);
              r();
            };
          }),
    async waitLines(n: number) {
      for (let i = 0; i < 1000 && lines.length < n; i++) await Bun.sleep(10);
      if (lines.length < n) throw new Error(`wanted ${n} lines, have ${JSON.stringify(lines)}`);
      return lines;
    },
  };
}

/** Every file under the hex subdirectories of a Go-layout cache dir. */
function cacheFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const sub of readdirSync(dir)) {
    if (!/^[0-9a-f]{2}$/.test(sub)) continue;
    for (const f of readdirSync(join(dir, sub))) out.push(`${sub}/${f}:${statSync(join(dir, sub, f)).size}`);
  }
  return out.sort();
}

describe("plugin socket handshake", () => {
  let server: PluginServer;
  const sharedDir = join(tmp.path, "shared");
  const scratchRoot = join(tmp.path, "scratch");
  const metrics = new Metrics();
  const sock = join(tmp.path, "p.sock");

  beforeAll(async () => {
    const shared = createLocalCache(createDiskStore({ dir: sharedDir }), metrics);
    server = await startPluginServer({
      address: { kind: "unix", path: sock },
      handler: shared,
      metrics,
      logger: createLogger({}),
      tokens: new TokenChecker({ token: "rw-tok", readToken: "ro-tok" }),
      readOnlyHandler: (id) => createReadOnlyHandler(shared, join(scratchRoot, String(id)), metrics),
    });
  });
  afterAll(() => {
    server?.closeAll();
    server?.stopAccepting();
  });

  test("missing token: nothing but one GOSTASH-ERROR line, then the daemon hangs up", async () => {
    const c = await rawConnect(sock);
    c.send(getLine(1, randomID()));
    await c.closed();
    expect(c.lines).toEqual([expect.stringMatching(/^GOSTASH-ERROR unauthorized: missing token/)]);
  });

  test("wrong token refused; an overlong first line refused", async () => {
    const c = await rawConnect(sock);
    c.send("GOSTASH-AUTH rw-to\n");
    await c.closed();
    expect(c.lines).toEqual(["GOSTASH-ERROR unauthorized: wrong token"]);
    const d = await rawConnect(sock);
    d.send("GOSTASH-AUTH " + "x".repeat(10_000));
    await d.closed();
    expect(d.lines[0]).toMatch(/^GOSTASH-ERROR unauthorized: no auth line/);
    expect(metrics.get("auth_refused")).toBe(3);
  });

  test("read-write token: capability, then puts reach the shared cache", async () => {
    const c = await rawConnect(sock);
    const action = randomID();
    const body = new TextEncoder().encode("shared output");
    c.send(`GOSTASH-AUTH rw-tok\n${putLines(1, action, body)}${getLine(2, action)}`);
    const lines = await c.waitLines(3);
    c.halfClose();
    await c.closed();
    expect(JSON.parse(lines[0]!).KnownCommands).toContain("put");
    const put = lines.map((l) => JSON.parse(l)).find((r) => r.ID === 1);
    expect(put.DiskPath.startsWith(sharedDir)).toBe(true);
    expect(cacheFiles(sharedDir).some((f) => f.startsWith(`${action.slice(0, 2)}/${action}-a`))).toBe(true);
  });

  test("read-only token: gets hit the shared cache, puts are answered from a private scratch store and change nothing shared", async () => {
    // Something in the shared cache to read.
    const w = await rawConnect(sock);
    const known = randomID();
    const knownBody = new TextEncoder().encode("known");
    w.send(`GOSTASH-AUTH rw-tok\n${putLines(1, known, knownBody)}`);
    await w.waitLines(2);
    w.halfClose();
    await w.closed();
    const before = cacheFiles(sharedDir);

    const c = await rawConnect(sock);
    const mine = randomID();
    const body = new TextEncoder().encode("a read-only client's output");
    // It even tries to overwrite the known action with other bytes.
    const evil = new TextEncoder().encode("poisoned");
    c.send(`GOSTASH-AUTH ro-tok\n${getLine(1, known)}${putLines(2, mine, body)}${putLines(3, known, evil)}${getLine(4, mine)}${getLine(5, known)}`);
    const lines = await c.waitLines(6);
    c.halfClose();
    await c.closed();
    const byID = new Map(lines.map((l) => JSON.parse(l)).map((r) => [r.ID, r]));
    expect(byID.get(1).OutputID).toBe(Buffer.from(sha256hex(knownBody), "hex").toString("base64"));
    for (const id of [2, 3]) {
      const r = byID.get(id);
      expect(r.Err).toBeUndefined();
      expect(r.DiskPath.startsWith(scratchRoot)).toBe(true);
      expect(existsSync(r.DiskPath)).toBe(true);
    }
    expect(await Bun.file(byID.get(2).DiskPath).text()).toBe("a read-only client's output");
    expect(byID.get(4).Miss).toBe(true); // never visible through the shared cache, not even to itself
    expect(byID.get(5).OutputID).toBe(byID.get(1).OutputID);
    expect(cacheFiles(sharedDir)).toEqual(before);
    expect(metrics.get("read_only_puts")).toBe(2);
    expect(metrics.get("connections_read_only")).toBe(1);
  });
});

describe("plugin socket without a token", () => {
  test("capability at once; an auth line a bridge sends anyway is skipped", async () => {
    const metrics = new Metrics();
    const sock = join(tmp.path, "open.sock");
    const server = await startPluginServer({
      address: { kind: "unix", path: sock },
      handler: createLocalCache(createDiskStore({ dir: join(tmp.path, "open") }), metrics),
      metrics,
      logger: createLogger({}),
    });
    try {
      const c = await rawConnect(sock);
      await c.waitLines(1);
      c.send(`GOSTASH-AUTH whatever\n${getLine(1, randomID())}`);
      const lines = await c.waitLines(2);
      expect(JSON.parse(lines[1]!)).toEqual({ ID: 1, Miss: true });
      const d = await rawConnect(sock);
      d.send("G"); // a prefix of an auth line, split across writes
      await Bun.sleep(20);
      d.send(`OSTASH-AUTH x\n${getLine(7, randomID())}`);
      expect(JSON.parse((await d.waitLines(2))[1]!)).toEqual({ ID: 7, Miss: true });
      c.kill();
      d.kill();
    } finally {
      server.closeAll();
      server.stopAccepting();
    }
  });
});
