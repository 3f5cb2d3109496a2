// Access control end to end: the real `go` command drives `gostash connect`
// against `gostash serve` with tokens (read-write, read-only, wrong, missing),
// and `go mod download` goes through the module proxy with the token in the
// GOPROXY URL (HTTP Basic), over plain HTTP and over TLS with a self-signed
// certificate made here by openssl.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { BIN, run, tempDir } from "../helpers/env.ts";
import { compileSteps, go, goEnv, writeDemoModule } from "../helpers/go.ts";
import { startDaemon, type Daemon } from "../daemon/helpers.ts";
import { startUpstream, writeApp, writeTestModules, type Upstream } from "../modproxy/helpers.ts";
import { parsePrometheus, value } from "../http/prom-parse.ts";

const GO_TIMEOUT = 240_000;
const RW = "rw-token-0123456789";
const RO = "ro-token-abcdef";

const tmp = tempDir("gostash-e2e-auth-");
const sock = join(tmp.path, "gostash.sock");
const daemonCache = join(tmp.path, "daemon-cache");
const mod = join(tmp.path, "demo");
let d: Daemon;
let up: Upstream;

beforeAll(async () => {
  writeDemoModule(mod);
  writeTestModules(join(tmp.path, "up"));
  up = startUpstream(join(tmp.path, "up"));
  // Tokens from the environment (as a service would pass them), not argv.
  d = await startDaemon(
    [`--plugin=${sock}`, "--http=127.0.0.1:0", `--cache-dir=${daemonCache}`, "--modproxy", `--upstream=${up.url}`, "--sumdb=off", "--upstream-retries=0"],
    { GOSTASH_TOKEN: RW, GOSTASH_READ_TOKEN: RO },
  );
}, 60_000);

afterAll(async () => {
  if (d && d.proc.exitCode === null) await d.stop("SIGTERM", 20_000);
  up?.stop();
  tmp.cleanup();
});

function envFor(name: string, token: string | null, extra: Record<string, string> = {}) {
  return goEnv({
    gocache: join(tmp.path, `gocache-${name}`),
    prog: `${BIN} connect ${sock}`,
    home: join(tmp.path, `home-${name}`),
    extra: { GOSTASH_TOKEN: token ?? "", ...extra },
  });
}

/** Every file in the hex subdirectories of a Go-layout cache, with sizes. */
function cacheFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const sub of readdirSync(dir)) {
    if (!/^[0-9a-f]{2}$/.test(sub)) continue;
    for (const f of readdirSync(join(dir, sub))) out.push(`${sub}/${f}:${statSync(join(dir, sub, f)).size}`);
  }
  return out.sort();
}

async function metric(name: string): Promise<number> {
  const r = await fetch(`${d.http}/metrics`, { headers: { Authorization: `Bearer ${RW}` } });
  return value(parsePrometheus(await r.text()), name) ?? 0;
}

describe("gostash connect with tokens, driven by the go command", () => {
  test("read-write token: the build goes through the daemon and fills its cache", async () => {
    const r = await go(["build", "./..."], mod, envFor("rw", RW), GO_TIMEOUT);
    expect(r.stderr).not.toContain("refused");
    expect(r.code).toBe(0);
    expect(cacheFiles(daemonCache).length).toBeGreaterThan(10);
  }, GO_TIMEOUT);

  for (const [what, token, reason] of [
    ["wrong", "not-the-token", "wrong token"],
    ["missing", null, "missing token"],
  ] as const) {
    test(`${what} token: refused with one clear error, the build succeeds from the local cache, the daemon's cache is untouched`, async () => {
      const before = cacheFiles(daemonCache);
      const refusedBefore = await metric("gostash_auth_refused_total");
      // A package the daemon has never seen, so the build has puts to make.
      const e = envFor(what, token);
      const r = await go(["vet", "./..."], mod, { ...e, GOFLAGS: "-mod=mod -tags=auth" + what }, GO_TIMEOUT);
      expect(r.code).toBe(0);
      const errs = r.stderr.split("\n").filter((l) => l.includes("gostash connect:"));
      expect(errs.length).toBe(1); // once per go command
      for (const l of errs) expect(l).toContain(`refused this client (unauthorized: ${reason}); check --token / GOSTASH_TOKEN. Serving this build from the local cache`);
      // The local cache got the outputs instead.
      expect(cacheFiles(join(tmp.path, `gocache-${what}`)).length).toBeGreaterThan(0);
      expect(cacheFiles(daemonCache)).toEqual(before);
      expect(await metric("gostash_auth_refused_total")).toBeGreaterThan(refusedBefore);
    }, GO_TIMEOUT);
  }

  test("read-only token: gets hit the daemon's cache, puts never reach it (go build, go vet, go list -export all work)", async () => {
    // Same sources as the read-write build: every compile step is a hit.
    const e = envFor("ro", RO);
    const b = await go(["build", "-x", "./..."], mod, e, GO_TIMEOUT);
    expect(b.code).toBe(0);
    expect(b.stderr).not.toContain("refused");
    expect(compileSteps(b.stderr)).toEqual([]);

    // New work (another directory: other action IDs): vet and export data are
    // puts, answered from a private scratch store.
    const fresh = join(tmp.path, "demo-ro");
    writeDemoModule(fresh);
    const before = cacheFiles(daemonCache);
    const v = await go(["vet", "./..."], fresh, e, GO_TIMEOUT);
    expect(v.code).toBe(0);
    const l = await go(["list", "-export", "-f", "{{.Export}}", "./greet"], fresh, e, GO_TIMEOUT);
    expect(l.code).toBe(0);
    const exportFile = l.stdout.trim();
    expect(exportFile.startsWith(join(daemonCache, "gostash-read-only"))).toBe(true);
    expect(statSync(exportFile).size).toBeGreaterThan(0);
    expect(cacheFiles(daemonCache)).toEqual(before);
    expect(await metric("gostash_read_only_puts_total")).toBeGreaterThan(0);

    // And a read-write client still gets what it got before (nothing was changed for it).
    const again = await go(["build", "-x", "./..."], mod, envFor("rw", RW), GO_TIMEOUT);
    expect(again.code).toBe(0);
    expect(compileSteps(again.stderr)).toEqual([]);
  }, GO_TIMEOUT);
});

describe("HTTP with tokens", () => {
  test("/healthz open; everything else needs a token; read-only token GET/HEAD only", async () => {
    expect((await fetch(`${d.http}/healthz`)).status).toBe(200);
    const metrics = await fetch(`${d.http}/metrics`);
    expect(metrics.status).toBe(401);
    expect(metrics.headers.get("www-authenticate")).toContain("Basic");
    expect((await fetch(`${d.http}/debug/vars`, { headers: { Authorization: "Bearer wrong" } })).status).toBe(401);
    expect((await fetch(`${d.http}/mod/example.com/lib/@v/list`)).status).toBe(401);
    const basic = (t: string) => ({ Authorization: `Basic ${Buffer.from(`user:${t}`).toString("base64")}` });
    expect((await fetch(`${d.http}/mod/example.com/lib/@v/list`, { headers: basic(RO) })).status).toBe(200);
    expect((await fetch(`${d.http}/mod/example.com/lib/@v/list`, { method: "HEAD", headers: basic(RO) })).status).toBe(200);
    expect((await fetch(`${d.http}/mod/example.com/lib/@v/list`, { method: "POST", headers: basic(RO), body: "x" })).status).toBe(403);
    const vars = await (await fetch(`${d.http}/debug/vars`, { headers: basic(RW) })).json();
    expect(JSON.stringify(vars)).not.toContain(RW);
  });

  test("go mod download over plain http: without a token 401; the go command itself refuses to send user:TOKEN over http (TLS below)", async () => {
    const port = new URL(d.http!).port;
    const app = join(tmp.path, "app");
    writeApp(app);
    const envWith = (proxy: string, home: string) =>
      goEnv({ gocache: join(tmp.path, "gocache-mod"), home: join(tmp.path, home), extra: { GOSUMDB: "off", GOFLAGS: "-mod=mod", GOPROXY: proxy } });
    const no = await go(["mod", "download", "-json", "example.com/lib@v1.1.0"], app, envWith(`http://127.0.0.1:${port}/mod`, "home-mod-none"), GO_TIMEOUT);
    expect(no.code).not.toBe(0);
    expect(no.stdout + no.stderr).toMatch(/401|Unauthorized/i);
    const creds = await go(["mod", "download", "-json", "example.com/lib@v1.1.0"], app, envWith(`http://user:${RW}@127.0.0.1:${port}/mod`, "home-mod-http"), GO_TIMEOUT);
    expect(creds.code).not.toBe(0);
    expect(creds.stdout).toContain("refusing to pass credentials to insecure URL");
    expect(creds.stdout + creds.stderr).not.toContain(RW); // go redacts it
  }, GO_TIMEOUT);
});

describe("TLS", () => {
  test("serve --tls-cert/--tls-key: HTTPS with a self-signed certificate; go mod download with the token over https", async () => {
    const cert = join(tmp.path, "cert.pem");
    const key = join(tmp.path, "key.pem");
    const gen = await run(
      ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
      { timeoutMs: 30_000 },
    );
    if (gen.code !== 0) throw new Error(`openssl failed: ${gen.stderr}`);
    const t = await startDaemon(
      [`--plugin=${join(tmp.path, "tls.sock")}`, "--http=127.0.0.1:0", `--cache-dir=${join(tmp.path, "tls-cache")}`, "--modproxy",
        `--upstream=${up.url}`, "--sumdb=off", `--tls-cert=${cert}`],
      { GOSTASH_TLS_KEY: key, GOSTASH_TOKEN: RW, GOSTASH_READ_TOKEN: RO },
    );
    try {
      const url = /http on (https:\/\/[^,\n]+)/.exec(t.stderr())?.[1];
      expect(url).toBeDefined();
      const ok = await run(["curl", "-sS", "--max-time", "20", "--cacert", cert, "-o", "/dev/null", "-w", "%{http_code}", `${url}/healthz`], { timeoutMs: 30_000 });
      expect(ok.stdout).toBe("200");
      const unauth = await run(["curl", "-sS", "--max-time", "20", "--cacert", cert, "-o", "/dev/null", "-w", "%{http_code}", `${url}/metrics`], { timeoutMs: 30_000 });
      expect(unauth.stdout).toBe("401");
      // Plain HTTP on the TLS port gets nothing useful.
      const plain = await run(["curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}", `${url!.replace("https:", "http:")}/healthz`], { timeoutMs: 30_000 });
      expect(plain.stdout).not.toBe("200");

      const app = join(tmp.path, "app-tls");
      writeApp(app);
      const envTok = (tok: string, home: string) =>
        goEnv({
          gocache: join(tmp.path, "gocache-tls"),
          home: join(tmp.path, home),
          extra: { GOSUMDB: "off", GOFLAGS: "-mod=mod", SSL_CERT_FILE: cert, GOPROXY: `${url!.replace("https://", `https://user:${tok}@`)}/mod` },
        });
      const wrong = await go(["mod", "download", "-json", "example.com/lib@v1.1.0"], app, envTok("wrong", "home-tls-wrong"), GO_TIMEOUT);
      expect(wrong.code).not.toBe(0);
      expect(wrong.stdout + wrong.stderr).toMatch(/401|Unauthorized/i);
      for (const [tok, home] of [[RW, "home-tls-rw"], [RO, "home-tls-ro"]] as const) {
        const r = await go(["mod", "download", "-json", "example.com/lib@v1.1.0", "example.com/dep@v1.0.0"], app, envTok(tok, home), GO_TIMEOUT);
        if (r.code !== 0) throw new Error(`go mod download over https failed:\n${r.stdout}\n${r.stderr}\n--- daemon:\n${t.stderr().slice(-2000)}`);
        expect(r.stdout).toContain('"Zip"');
        expect(existsSync(join(tmp.path, home, "gopath", "pkg", "mod", "example.com", "dep@v1.0.0", "dep.go"))).toBe(true);
      }
    } finally {
      await t.stop("SIGTERM", 20_000);
    }
  }, GO_TIMEOUT);

  test("--tls-cert without --tls-key is a configuration error", async () => {
    const r = await run([BIN, "serve", `--plugin=${join(tmp.path, "x.sock")}`, "--http=127.0.0.1:0", "--tls-cert=/nonexistent"], { timeoutMs: 20_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("--tls-cert and --tls-key go together");
  });
});
