// The two reverse proxies under test, started the same way: gostash's
// `serve --revproxy` and go-cache-plugin v0.1.1's (built into .tools/bin by
// scripts/tools/go-cache-plugin.sh), each with a cache directory, the
// shared S3 bucket (versitygw) and the local origin listed.
//
// go-cache-plugin appends the CA it makes at every start to the system
// bundle /etc/ssl/certs/ca-certificates.crt, and trusts origins through
// that same file. So it runs in a private mount namespace (unshare -m, as
// root) where that path is a bind mount of a temporary copy: its CA lands
// in the copy (which the test's clients then trust), and the machine's
// real bundle is never touched.

import { copyFileSync, appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, TOOLS, run } from "../helpers/env.ts";
import { freePort, type S3Server } from "../helpers/s3server.ts";
import { startDaemon } from "../daemon/helpers.ts";
import type { Origin } from "./origin.ts";

export interface ProxyUnderTest {
  name: "gostash" | "go-cache-plugin";
  /** http://127.0.0.1:PORT, for HTTP_PROXY/HTTPS_PROXY. */
  proxyURL: string;
  /** PEM file with every root a client needs: the proxy's CA and the origin's own certificate. */
  roots: string;
  cacheDir: string;
  pid: number;
  stderr(): string;
  stop(): Promise<void>;
}

export const GCP_BIN = join(TOOLS, "bin", "go-cache-plugin");
const SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

export interface StartOptions {
  origin: Origin;
  s3: S3Server;
  cacheDir: string;
  /** A directory for the roots file and the like. */
  work: string;
  /** Bucket key prefix (the same for two daemons that share entries). */
  prefix: string;
  extraArgs?: string[];
  env?: Record<string, string>;
  /** --revproxy; by default the origin's two ports (gostash) or localhost and its HTTP port (go-cache-plugin). */
  hosts?: string;
}

/** gostash serve --revproxy for both of the origin's ports. */
export async function startGostash(o: StartOptions): Promise<ProxyUnderTest> {
  const hosts = o.hosts ?? `localhost:${o.origin.httpPort},localhost:${o.origin.httpsPort}`;
  const d = await startDaemon(
    ["--plugin=0", "--http=127.0.0.1:0", `--cache-dir=${o.cacheDir}`, `--revproxy=${hosts}`, ...(o.extraArgs ?? [])],
    { ...o.s3.env, GOCACHE_KEY_PREFIX: o.prefix, NODE_EXTRA_CA_CERTS: o.origin.certFile, HTTP_PROXY: "", HTTPS_PROXY: "", ...o.env },
  );
  const ca = await run([BIN, "revproxy", "ca", `--cache-dir=${o.cacheDir}`]);
  if (ca.code !== 0) throw new Error(`gostash revproxy ca: ${ca.stderr}`);
  const roots = join(o.work, `gostash-roots-${d.proc.pid}.pem`);
  writeFileSync(roots, ca.stdout + o.origin.certPem);
  return {
    name: "gostash",
    proxyURL: d.http!,
    roots,
    cacheDir: o.cacheDir,
    pid: d.proc.pid,
    stderr: d.stderr,
    async stop() {
      if (d.proc.exitCode === null) await d.stop("SIGTERM", 30_000);
    },
  };
}

/**
 * An HTTPS front for the S3 server (go-cache-plugin's reverse proxy cannot
 * upload over plain HTTP: its SDK refuses an unseekable body without TLS).
 * Requests are forwarded with their Host header, so signatures verify.
 */
export function startTlsFront(upstream: string, cert: string, key: string): { endpoint: string; stop(): void } {
  const up = new URL(upstream);
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert, key },
    maxRequestBodySize: 1 << 30,
    async fetch(req) {
      const u = new URL(req.url);
      const headers = new Headers(req.headers);
      headers.delete("connection");
      const hasBody = req.method !== "GET" && req.method !== "HEAD";
      const res = await fetch(`${up.protocol}//${up.host}${u.pathname}${u.search}`, {
        method: req.method,
        headers,
        body: hasBody ? await req.arrayBuffer() : undefined,
        redirect: "manual",
        decompress: false,
      } as RequestInit);
      const out = new Headers(res.headers);
      out.delete("transfer-encoding");
      out.delete("connection");
      const bodyless = req.method === "HEAD" || res.status === 204 || res.status === 304;
      return new Response(bodyless ? null : await res.arrayBuffer(), { status: res.status, headers: out });
    },
  });
  return { endpoint: `https://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
}

/** Can go-cache-plugin be run the way startGoCachePlugin needs (root, unshare, the binary)? Why not, if not. */
export function goCachePluginUnavailable(): string | null {
  if (!existsSync(GCP_BIN)) return `${GCP_BIN} is missing (scripts/tools/go-cache-plugin.sh builds it)`;
  if (process.getuid?.() !== 0) return "go-cache-plugin's reverse proxy needs root here (a private mount namespace for its CA bundle, and port 443)";
  if (!Bun.which("unshare")) return "unshare(1) is missing";
  return null;
}

/**
 * go-cache-plugin serve --revproxy. Its HTTPS targets must be on port 443
 * (its certificate names the listed hosts as given, so `localhost:8443`
 * never matches a client's `localhost`; side-by-side.test.ts shows it):
 * the origin's HTTPS port must be 443, listed as plain `localhost`.
 */
export async function startGoCachePlugin(o: StartOptions): Promise<ProxyUnderTest> {
  if (o.origin.httpsPort !== 443) throw new Error("go-cache-plugin needs the origin's HTTPS on port 443");
  const bundle = join(o.work, `gcp-bundle-${freePort()}.crt`);
  copyFileSync(SYSTEM_BUNDLE, bundle);
  appendFileSync(bundle, `\n${o.origin.certPem}`);
  const before = readFileSync(bundle, "utf8").length;
  const port = freePort();
  const args = [
    "serve",
    `--plugin=${freePort()}`,
    `--http=127.0.0.1:${port}`,
    `--cache-dir=${o.cacheDir}`,
    `--revproxy=${o.hosts ?? `localhost,localhost:${o.origin.httpPort}`}`,
    "-v",
    ...(o.extraArgs ?? []),
  ];
  const proc = Bun.spawn(["unshare", "-m", "--propagation", "private", "sh", "-c", `mount --bind "$0" ${SYSTEM_BUNDLE} && exec "$@"`, bundle, GCP_BIN, ...args], {
    env: { ...process.env, ...o.s3.env, GOCACHE_KEY_PREFIX: o.prefix, HTTP_PROXY: "", HTTPS_PROXY: "", ...o.env } as Record<string, string>,
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  let err = "";
  void (async () => {
    const dec = new TextDecoder();
    for await (const c of proc.stderr) err += dec.decode(c, { stream: true });
  })();
  const end = Date.now() + 30_000;
  // Up when its HTTP port answers and its CA is in the bundle.
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`go-cache-plugin exited (${proc.exitCode}):\n${err}`);
    if (Date.now() > end) {
      proc.kill(9);
      throw new Error(`go-cache-plugin did not start:\n${err}`);
    }
    const up = await fetch(`http://127.0.0.1:${port}/debug/vars`).then((r) => r.ok, () => false);
    if (up && readFileSync(bundle, "utf8").length > before) break;
    await Bun.sleep(50);
  }
  return {
    name: "go-cache-plugin",
    proxyURL: `http://127.0.0.1:${port}`,
    roots: bundle,
    cacheDir: o.cacheDir,
    pid: proc.pid,
    stderr: () => err,
    async stop() {
      if (proc.exitCode !== null) return;
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill(9), 20_000);
      await proc.exited;
      clearTimeout(t);
    },
  };
}
