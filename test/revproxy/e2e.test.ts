// The compiled gostash's reverse proxy beyond the shared scenarios
// (side-by-side.test.ts): its CA across restarts and `gostash revproxy ca`,
// the token on proxy requests and CONNECT, the daemon's own endpoints still
// answering through the front, --debug=4 request lines, refused tunnels, an
// HTTPS --http listener used as an HTTPS proxy, the system trust store.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, run, tempDir } from "../helpers/env.ts";
import { startDaemon } from "../daemon/helpers.ts";
import { parsePrometheus, value } from "../http/prom-parse.ts";
import { buildGoClient, curl, goFetch } from "./helpers.ts";
import { bodyOf, startOrigin, type Origin } from "./origin.ts";

const tmp = tempDir("gostash-revproxy-e2e-");
let origin: Origin;
let client: string;
let seq = 0;

beforeAll(async () => {
  origin = startOrigin();
  client = await buildGoClient();
}, 240_000);

afterAll(() => {
  origin?.stop();
  tmp.cleanup();
});

const hosts = () => `localhost:${origin.httpPort},localhost:${origin.httpsPort}`;
const fresh = () => {
  const d = join(tmp.path, `cache-${++seq}`);
  mkdirSync(d, { recursive: true });
  return d;
};
const daemonEnv = () => ({ NODE_EXTRA_CA_CERTS: origin.certFile, HTTP_PROXY: "", HTTPS_PROXY: "" });
const unique = (kind: string) => `/${kind}/e2e-${++seq}`;

async function caOf(cacheDir: string): Promise<string> {
  const r = await run([BIN, "revproxy", "ca", `--cache-dir=${cacheDir}`]);
  expect(r.code).toBe(0);
  return r.stdout;
}

describe("the CA", () => {
  test("gostash revproxy ca prints the CA serve uses, and it survives a restart", async () => {
    const dir = fresh();
    const printed = await caOf(dir); // made before the daemon ever ran
    expect(printed).toStartWith("-----BEGIN CERTIFICATE-----");
    expect(printed).toBe(readFileSync(join(dir, "revproxy", "ca.pem"), "utf8"));
    const roots = join(tmp.path, `roots-${seq}.pem`);
    writeFileSync(roots, printed + origin.certPem);
    for (let i = 0; i < 2; i++) {
      const d = await startDaemon(["--plugin=0", "--http=0", `--cache-dir=${dir}`, `--revproxy=${hosts()}`], daemonEnv());
      try {
        const [r] = await goFetch(client, d.http!, roots, [`${origin.https}${unique("immutable")}`]);
        expect(r!.error).toBeUndefined();
        expect(r!.status).toBe(200);
      } finally {
        await d.stop();
      }
    }
    expect(await caOf(dir)).toBe(printed);
  }, 120_000);
});

describe("a daemon with --revproxy and a token", () => {
  const TOKEN = "t0ken-e2e";
  let d: Awaited<ReturnType<typeof startDaemon>>;
  let roots: string;
  beforeAll(async () => {
    const dir = fresh();
    d = await startDaemon(["--plugin=0", "--http=0", `--cache-dir=${dir}`, `--revproxy=${hosts()}`, "--debug=4"], { ...daemonEnv(), GOSTASH_TOKEN: TOKEN });
    roots = join(tmp.path, "roots-token.pem");
    writeFileSync(roots, (await caOf(dir)) + origin.certPem);
  }, 60_000);
  afterAll(async () => {
    await d?.stop();
  });

  test("proxy requests and CONNECTs need the token (407), in Proxy-Authorization", async () => {
    const path = unique("immutable");
    const refused = await curl(d.http!, `${origin.http}${path}`);
    expect(refused.status).toBe(407);
    expect(refused.headers["proxy-authenticate"]).toContain("Basic");
    const connect = await curl(d.http!, `${origin.https}${path}`, ["--cacert", roots]);
    expect(connect.code).not.toBe(0);
    expect(connect.stderr).toContain("407");
    expect(origin.count(path)).toBe(0);
    const ok = await curl(d.http!, `${origin.https}${path}`, ["--cacert", roots, "--proxy-user", `u:${TOKEN}`]);
    expect(ok.status).toBe(200);
    expect(ok.body.toString()).toBe(bodyOf(path));
    // The Go client with the token in HTTPS_PROXY, as users set it.
    const proxyWithToken = d.http!.replace("http://", `http://u:${TOKEN}@`);
    const [g] = await goFetch(client, proxyWithToken, roots, [`${origin.https}${path}`]);
    expect(g!.xCache).toBe("hit, local");
  });

  test("the daemon's own endpoints still answer through the front (with the token where they need it)", async () => {
    expect((await fetch(`${d.http}/healthz`)).status).toBe(200);
    expect((await fetch(`${d.http}/metrics`)).status).toBe(401);
    const res = await fetch(`${d.http}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const fams = parsePrometheus(await res.text());
    expect(value(fams, "gostash_revproxy_requests_total")).toBeGreaterThan(0);
    expect(value(fams, "gostash_revproxy_connect_terminated_total")).toBeGreaterThan(0);
    const vars = (await (await fetch(`${d.http}/debug/vars`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { metrics: Record<string, number>; revproxy: { hosts: string } };
    expect(vars.metrics.revproxy_hits_local).toBeGreaterThan(0);
    expect(vars.revproxy.hosts).toBe(hosts());
  });

  test("--debug=4 logs one line per proxied request", () => {
    expect(d.stderr()).toMatch(/gostash: revproxy: GET https:\/\/localhost:\d+\/immutable\/e2e-\d+ 200 hit, local/);
  });

  test("two requests on one kept-alive proxy connection are both answered", async () => {
    const a = unique("immutable");
    const b = unique("immutable");
    const r = await run(["curl", "-sS", "--proxy", d.http!, "--proxy-user", `u:${TOKEN}`, `${origin.http}${a}`, `${origin.http}${b}`], { env: { HTTP_PROXY: "" } });
    expect(r.stdout).toBe(bodyOf(a) + bodyOf(b));
  });
});

describe("options", () => {
  test("--no-revproxy-tunnel refuses CONNECT to hosts that are not listed (403)", async () => {
    const d = await startDaemon(["--plugin=0", "--http=0", `--cache-dir=${fresh()}`, `--revproxy=${hosts()}`, "--no-revproxy-tunnel"], daemonEnv());
    try {
      const r = await curl(d.http!, `https://127.0.0.1:${origin.httpsPort}/immutable/x`, ["--cacert", origin.certFile]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("403");
    } finally {
      await d.stop();
    }
  });

  test("--revproxy without --http is a usage error naming both", async () => {
    const r = await run([BIN, "serve", "--plugin=0", `--cache-dir=${fresh()}`], { env: { GOCACHE_REVPROXY: "example.com" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("GOCACHE_REVPROXY needs --http");
  });

  test("with --tls-cert the --http port is an HTTPS proxy, CONNECT and all", async () => {
    const dir = fresh();
    // The listener borrows the origin's certificate (localhost, 127.0.0.1).
    const key = join(tmp.path, "origin-key.pem");
    writeFileSync(key, origin.keyPem);
    const d = await startDaemon(["--plugin=0", "--http=0", `--cache-dir=${dir}`, `--revproxy=${hosts()}`, `--tls-cert=${origin.certFile}`, `--tls-key=${key}`], daemonEnv());
    try {
      const proxy = /http on (https:\/\/[^,\s]+)/.exec(d.stderr())![1]!.replace("127.0.0.1", "localhost");
      const roots = join(tmp.path, "roots-tls.pem");
      writeFileSync(roots, (await caOf(dir)) + origin.certPem);
      const path = unique("immutable");
      const r = await curl(proxy, `${origin.https}${path}`, ["--proxy-cacert", origin.certFile, "--cacert", roots]);
      expect(r.status).toBe(200);
      expect(r.headers["x-cache"]).toBe("fetch, cached");
      expect((await fetch(`${proxy}/healthz`, { tls: { ca: origin.certPem } } as RequestInit)).status).toBe(200);
    } finally {
      await d.stop();
    }
  });
});

describe.skipIf(process.getuid?.() !== 0 || !Bun.which("update-ca-certificates"))("the system trust store (root, in a private mount namespace)", () => {
  test("gostash revproxy ca --install adds the CA once; the system bundle then verifies it", async () => {
    const dir = fresh();
    const certs = join(tmp.path, "etc-ssl-certs");
    const anchors = join(tmp.path, "anchors");
    mkdirSync(anchors, { recursive: true });
    // The machine's trust store is a copy in this namespace: nothing outside changes.
    const script = [
      `cp -a /etc/ssl/certs "${certs}"`,
      `mount --bind "${certs}" /etc/ssl/certs`,
      `mount --bind "${anchors}" /usr/local/share/ca-certificates`,
      `"${BIN}" revproxy ca --install --cache-dir="${dir}" >/dev/null`,
      `"${BIN}" revproxy ca --install --cache-dir="${dir}" >/dev/null`,
      `openssl verify -CAfile /etc/ssl/certs/ca-certificates.crt "${dir}/revproxy/ca.pem"`,
    ].join(" && ");
    const r = await run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], { timeoutMs: 120_000 });
    expect(r.stderr).toContain("CA installed in /usr/local/share/ca-certificates/gostash-revproxy.crt");
    expect(r.stderr).toContain("CA already in /usr/local/share/ca-certificates/gostash-revproxy.crt");
    expect(r.stdout).toContain(": OK");
    expect(r.code).toBe(0);
    // Outside the namespace, the real store does not have it.
    expect(readFileSync("/etc/ssl/certs/ca-certificates.crt", "utf8")).not.toContain(readFileSync(join(dir, "revproxy", "ca.pem"), "utf8").split("\n")[1]!);
  }, 180_000);
});
