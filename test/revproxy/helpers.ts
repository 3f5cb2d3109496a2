// Shared by the reverse-proxy tests: the Go client, curl through a proxy,
// and a daemon's peak memory.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, tempDir, type RunResult } from "../helpers/env.ts";

let built: Promise<string> | null = null;

/**
 * Builds test/revproxy/goclient once per test process (no network: stdlib
 * only), into a directory of its own that lives as long as the test run.
 */
export function buildGoClient(): Promise<string> {
  built ??= (async () => {
    const dir = tempDir("gostash-goclient-").path; // removed when the test run ends (test/preload.ts)
    const out = join(dir, "goclient");
    const r = await run(["go", "build", "-o", out, "."], {
      cwd: join(import.meta.dir, "goclient"),
      env: { GOFLAGS: "-mod=mod", GOTOOLCHAIN: "local", CGO_ENABLED: "0" },
      timeoutMs: 180_000,
    });
    if (r.code !== 0 || !existsSync(out)) throw new Error(`go build goclient failed: ${r.stderr}`);
    return out;
  })();
  return built;
}

export interface GoResult {
  url: string;
  status: number;
  xCache: string;
  size: number;
  sha256: string;
  issuer: string;
  error?: string;
}

/** Fetches the URLs in order with the Go client through `proxy`, trusting the roots in `roots`. */
export async function goFetch(client: string, proxy: string, roots: string, urls: string[]): Promise<GoResult[]> {
  const r = await run([client, ...urls], { env: { HTTPS_PROXY: proxy, HTTP_PROXY: proxy, SSL_CERT_FILE: roots, NO_PROXY: "", no_proxy: "" }, timeoutMs: 300_000 });
  const lines = r.stdout.trim().split("\n").filter(Boolean);
  if (lines.length !== urls.length) throw new Error(`goclient: ${lines.length} answers for ${urls.length} URLs: ${r.stderr}`);
  return lines.map((l) => JSON.parse(l) as GoResult);
}

export interface CurlResult extends RunResult {
  status: number;
  /** The final answer's headers (after a CONNECT's own 200), names in lower case. */
  headers: Record<string, string>;
  body: Buffer;
}

let curlSeq = 0;

/** One request with curl through a proxy. */
export async function curl(proxy: string, url: string, extra: string[] = []): Promise<CurlResult> {
  const base = join(tmpdir(), `gostash-curl-${process.pid}-${++curlSeq}`);
  try {
    const r = await run(["curl", "-sS", "--max-time", "120", "-D", `${base}.h`, "-o", `${base}.b`, "--proxy", proxy, ...extra, url], { timeoutMs: 180_000, env: { HTTPS_PROXY: "", HTTP_PROXY: "" } });
    const text = existsSync(`${base}.h`) ? readFileSync(`${base}.h`, "utf8") : "";
    const last = text.slice(text.lastIndexOf("HTTP/"));
    const headers: Record<string, string> = {};
    for (const line of last.split("\r\n").slice(1)) {
      const c = line.indexOf(":");
      if (c > 0) headers[line.slice(0, c).toLowerCase()] = line.slice(c + 1).trim();
    }
    const body = existsSync(`${base}.b`) ? readFileSync(`${base}.b`) : Buffer.alloc(0);
    return { ...r, status: Number(/^HTTP\/[\d.]+ (\d+)/.exec(last)?.[1] ?? 0), headers, body };
  } finally {
    rmSync(`${base}.h`, { force: true });
    rmSync(`${base}.b`, { force: true });
  }
}

/** Peak resident memory of a process so far (VmHWM), in bytes. */
export function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Current resident memory of a process (VmRSS), in bytes. */
export function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}
