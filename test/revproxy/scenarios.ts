// The reverse-proxy scenarios of issue #14, written once and run against
// both proxies (side-by-side.test.ts): real curl, the real Go client, real
// TLS, the real bucket. Each returns what it observed; the test asserts
// gostash's requirements and records go-cache-plugin's behaviour next to
// it.

import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "../helpers/env.ts";
import { entryKey } from "../../src/revproxy/keys.ts";
import { curl, goFetch, peakRss } from "./helpers.ts";
import { bigSha256, bodyOf, type Origin } from "./origin.ts";
import type { ProxyUnderTest } from "./proxies.ts";

const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");
let seq = 0;
export const uniqueName = (tag: string) => `${tag}-${process.pid}-${++seq}`;

export interface TwiceResult {
  xCache: [string, string];
  sameBytes: boolean;
  rightBytes: boolean;
  originFetches: number;
  issuer?: string;
}

/** An immutable file fetched twice with curl (plain HTTP, absolute-form). */
export async function immutableTwiceCurl(p: ProxyUnderTest, origin: Origin): Promise<TwiceResult> {
  const path = `/immutable/${uniqueName("curl")}`;
  const a = await curl(p.proxyURL, `${origin.http}${path}`);
  const b = await curl(p.proxyURL, `${origin.http}${path}`);
  return {
    xCache: [a.headers["x-cache"] ?? "", b.headers["x-cache"] ?? ""],
    sameBytes: a.body.equals(b.body),
    rightBytes: b.body.toString() === bodyOf(path),
    originFetches: origin.count(path),
  };
}

/** An immutable file fetched twice over HTTPS by the Go client (CONNECT, terminated by the proxy). */
export async function immutableTwiceGo(p: ProxyUnderTest, origin: Origin, client: string): Promise<TwiceResult> {
  const path = `/immutable/${uniqueName("go")}`;
  const [a, b] = await goFetch(client, p.proxyURL, p.roots, [`${origin.https}${path}`, `${origin.https}${path}`]);
  if (a!.error || b!.error) throw new Error(`goclient: ${a!.error ?? b!.error}`);
  return {
    xCache: [a!.xCache, b!.xCache],
    sameBytes: a!.sha256 === b!.sha256,
    rightBytes: b!.sha256 === sha(bodyOf(path)),
    originFetches: origin.count(path),
    issuer: b!.issuer,
  };
}

/** A short max-age answer and a no-store one, each fetched twice with curl over HTTPS. */
export async function shortAndNoStore(p: ProxyUnderTest, origin: Origin): Promise<{ short: TwiceResult; noStore: TwiceResult }> {
  const twice = async (kind: string) => {
    const path = `/${kind}/${uniqueName(kind)}`;
    const a = await curl(p.proxyURL, `${origin.https}${path}`, ["--cacert", p.roots]);
    await Bun.sleep(100);
    const b = await curl(p.proxyURL, `${origin.https}${path}`, ["--cacert", p.roots]);
    return { xCache: [a.headers["x-cache"] ?? "", b.headers["x-cache"] ?? ""] as [string, string], sameBytes: a.body.equals(b.body), rightBytes: b.status === 200, originFetches: origin.count(path) };
  };
  return { short: await twice("short"), noStore: await twice("nostore") };
}

/** An absolute-form request for a host that is not listed. */
export async function unlistedAbsolute(p: ProxyUnderTest, origin: Origin): Promise<{ status: number; originFetches: number }> {
  const path = `/immutable/${uniqueName("unlisted")}`;
  const r = await curl(p.proxyURL, `http://127.0.0.1:${origin.httpPort}${path}`);
  return { status: r.status, originFetches: origin.count(path) };
}

/** CONNECT to a host that is not listed: the origin's own certificate must reach the client. */
export async function unlistedConnect(p: ProxyUnderTest, origin: Origin, client: string): Promise<{ status: number; issuer: string; xCache: string }> {
  const path = `/immutable/${uniqueName("tunnel")}`;
  const [r] = await goFetch(client, p.proxyURL, p.roots, [`https://127.0.0.1:${origin.httpsPort}${path}`]);
  if (r!.error) throw new Error(`goclient: ${r!.error}`);
  return { status: r!.status, issuer: r!.issuer, xCache: r!.xCache };
}

/** 50 clients at once (one curl, 50 parallel transfers) for one uncached URL the origin is slow to answer. */
export async function fiftyAtOnce(p: ProxyUnderTest, origin: Origin): Promise<{ originFetches: number; allRight: boolean; statuses: number[] }> {
  const path = `/slow/500/${uniqueName("fifty")}`;
  const url = `${origin.http}${path}`;
  const args = ["curl", "-sS", "--max-time", "120", "--proxy", p.proxyURL, "--parallel", "--parallel-immediate", "--parallel-max", "50", "-w", "%{http_code} %{size_download}\\n"];
  for (let i = 0; i < 50; i++) args.push("-o", "/dev/null", url);
  const r = await run(args, { timeoutMs: 180_000, env: { HTTP_PROXY: "", HTTPS_PROXY: "" } });
  const lines = r.stdout.trim().split("\n");
  const statuses = lines.map((l) => Number(l.split(" ")[0]));
  const allRight = lines.length === 50 && lines.every((l) => l === `200 ${bodyOf(path).length}`);
  return { originFetches: origin.count(path), allRight, statuses };
}

/**
 * One path on two listed HTTPS hosts (localhost and 127.0.0.1, the same
 * origin, whose body names the Host): each must get its own answer.
 * `insecure` for a proxy whose certificate does not name 127.0.0.1 as an
 * IP address (the bodies are what this is about, not the trust).
 */
export async function samePathTwoHosts(p: ProxyUnderTest, origin: Origin, insecure: boolean): Promise<{ bodies: [string, string]; xCache: [string, string] }> {
  const path = `/host/${uniqueName("host")}`;
  const port = origin.httpsPort === 443 ? "" : `:${origin.httpsPort}`;
  const tls = ["--cacert", p.roots, ...(insecure ? ["-k"] : [])];
  const a = await curl(p.proxyURL, `https://localhost${port}${path}`, tls);
  const b = await curl(p.proxyURL, `https://127.0.0.1${port}${path}`, tls);
  return { bodies: [a.body.toString().trim(), b.body.toString().trim()], xCache: [a.headers["x-cache"] ?? "", b.headers["x-cache"] ?? ""] };
}

/** Where a proxy keeps a plain-HTTP URL on its local disk. */
function localFile(p: ProxyUnderTest, url: string): string {
  // gostash: see src/revproxy/keys.ts; go-cache-plugin: SHA-256 of the URL as its server saw it.
  const key = p.name === "gostash" ? entryKey(url) : sha(url);
  return join(p.cacheDir, "revproxy", key.slice(0, 2), key);
}

/** The cached file is changed on disk (last body byte flipped), then the URL is fetched again. */
export async function tamperedFile(p: ProxyUnderTest, origin: Origin): Promise<{ servedRightBytes: boolean; originFetches: number; xCache: string }> {
  const path = `/immutable/${uniqueName("tamper")}`;
  const url = `${origin.http}${path}`;
  await curl(p.proxyURL, url);
  const file = localFile(p, url);
  for (let i = 0; i < 200 && !existsQuiet(file); i++) await Bun.sleep(25);
  const bytes = readFileSync(file);
  bytes[bytes.length - 2]! ^= 0x20;
  writeFileSync(file, bytes);
  const again = await curl(p.proxyURL, url);
  return { servedRightBytes: again.body.toString() === bodyOf(path), originFetches: origin.count(path), xCache: again.headers["x-cache"] ?? "" };
}

function existsQuiet(path: string): boolean {
  try {
    readFileSync(path);
    return true;
  } catch {
    return false;
  }
}

/** curl through the proxy, its body hashed as it streams (never held), its last header block kept. */
async function curlHashed(p: ProxyUnderTest, url: string, work: string): Promise<{ sha256: string; xCache: string; code: number }> {
  const headers = join(work, `headers-${uniqueName("h")}`);
  const proc = Bun.spawn(["curl", "-sS", "--max-time", "300", "-D", headers, "--proxy", p.proxyURL, "--cacert", p.roots, url], {
    stdout: "pipe",
    stderr: "inherit",
    env: { ...process.env, HTTP_PROXY: "", HTTPS_PROXY: "" },
  });
  const hasher = createHash("sha256");
  for await (const chunk of proc.stdout) hasher.update(chunk);
  const code = await proc.exited;
  const text = existsQuiet(headers) ? readFileSync(headers, "utf8") : "";
  return { sha256: hasher.digest("hex"), xCache: /x-cache: ([^\r\n]*)/i.exec(text.slice(text.lastIndexOf("HTTP/")))?.[1] ?? "", code };
}

/** A 200 MiB download over HTTPS, twice (fetched, then from the cache), and the daemon's peak memory. */
export async function bigDownload(p: ProxyUnderTest, origin: Origin, work: string, mib = 200): Promise<{ rightBytes: [boolean, boolean]; xCache: [string, string]; peakRssBytes: number }> {
  const name = uniqueName("big");
  const url = `${origin.https}/big/${mib}/${name}`;
  const want = bigSha256(mib, name);
  const a = await curlHashed(p, url, work);
  const b = await curlHashed(p, url, work);
  return { rightBytes: [a.sha256 === want, b.sha256 === want], xCache: [a.xCache, b.xCache], peakRssBytes: peakRss(p.pid) };
}
