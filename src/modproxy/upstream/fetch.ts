// Upstream module proxies, with the go command's GOPROXY list semantics:
//
//   "https://a,https://b"   b is tried only when a answers 404 or 410
//   "https://a|https://b"   b is tried after any error from a
//   "file:///dir"           a directory in the GOPROXY layout
//   "off"                   stop: everything after it is unreachable
//
// "direct" (fetching from version control with the go command) is not done
// by the daemon: it is refused at start-up with a clear message.
//
// Requests use Bun's native fetch, to the URL the go command would ask
// (module/layout.ts urlPathOf escapes the decoded path again). A request
// whose answer headers do not arrive within `timeoutMs`, or whose body
// stalls for that long between two chunks, fails with a timeout (never a
// hang); so does a 404/410 whose short body is not all there within
// `timeoutMs`. 429 and 5xx answers and network errors are retried a few
// times with backoff (Retry-After honoured up to a cap) before the next
// upstream in the list is considered.

import { open } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { Metrics } from "../../util/metrics.ts";
import { urlPathOf } from "../module/layout.ts";
import { hideUrlPasswords } from "../../util/redact.ts";

export interface Upstream {
  /** Base URL without a trailing slash ("https://proxy.golang.org") or file:// URL. */
  url: string;
  /** For file:// upstreams, the directory. */
  dir?: string;
  /** How to go on after this entry fails: "," only on 404/410, "|" on any error. */
  next: "," | "|" | null;
}

export function parseUpstreams(list: string): Upstream[] {
  const out: Upstream[] = [];
  const re = /([^,|]*)([,|]?)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(list)) && m[0] !== "") {
    const raw = m[1]!.trim();
    const sepChar = (m[2] || null) as "," | "|" | null;
    if (!raw) continue;
    if (raw === "off") {
      out.push({ url: "off", next: null });
      break;
    }
    if (raw === "direct" || raw === "noproxy") {
      throw new Error(`config: --upstream: "${raw}" is not supported by the daemon (it never runs version control for modules); list proxy URLs only`);
    }
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new Error(`config: --upstream: ${JSON.stringify(raw)} is not a URL`);
    }
    if (u.protocol === "file:") {
      out.push({ url: raw.replace(/\/+$/, ""), dir: fileURLToPath(u), next: sepChar });
    } else if (u.protocol === "http:" || u.protocol === "https:") {
      out.push({ url: raw.replace(/\/+$/, ""), next: sepChar });
    } else {
      throw new Error(`config: --upstream: unsupported scheme in ${JSON.stringify(raw)}`);
    }
  }
  if (!out.length) throw new Error("config: --upstream is empty");
  return out;
}

export type FetchResult =
  | { ok: true; status: 200; body: ReadableStream<Uint8Array>; size: number | null; from: string }
  | { ok: false; status: 404 | 410; message: string; from: string };

export class UpstreamError extends Error {
  constructor(
    message: string,
    readonly status = 502,
    options?: { cause?: unknown },
  ) {
    // The message names the upstream's URL, which may carry credentials (https://user:pass@proxy): it is logged and shown.
    super(hideUrlPasswords(message), options);
    this.name = "UpstreamError";
  }
}

export interface UpstreamOptions {
  timeoutMs: number;
  retries: number;
  /** Base of the backoff between retries (doubles each time). */
  backoffMs?: number;
  onFetch?: (from: string, seconds: number, ok: boolean) => void;
}

/**
 * Upstream options that count every fetch of a family ("modproxy" for
 * module files, "sumdb" for the checksum database): <family>_upstream_fetches,
 * _upstream_failures and the _upstream_seconds histogram.
 */
export function countedUpstreamOptions(o: { timeoutMs: number; retries: number }, metrics: Metrics, family: "modproxy" | "sumdb"): UpstreamOptions {
  return {
    timeoutMs: o.timeoutMs,
    retries: o.retries,
    onFetch: (_from, seconds, ok) => {
      metrics.inc(`${family}_upstream_fetches`);
      if (!ok) metrics.inc(`${family}_upstream_failures`);
      metrics.observe(`${family}_upstream_seconds`, seconds);
    },
  };
}

const RETRY_AFTER_CAP_MS = 5000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Wraps a body so that a gap of more than `ms` between chunks fails it
 * (and aborts the request through `abort`).
 */
function idleGuard(body: ReadableStream<Uint8Array>, ms: number, abort: () => void, what: string): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  // One timer for the whole body, pushed back on every chunk (cheaper than
  // a timer per read); when it fires, the request is aborted and the
  // pending read fails with the stall error below.
  let stalled = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const stop = () => {
    if (timer) clearTimeout(timer);
    timer = null;
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      timer ??= setTimeout(() => {
        stalled = true;
        abort();
        reader.cancel().catch(() => {});
      }, ms);
      try {
        const r = await reader.read();
        if (stalled) throw new Error("stalled");
        timer.refresh();
        if (r.done) {
          stop();
          controller.close();
        } else controller.enqueue(r.value);
      } catch (err) {
        stop();
        controller.error(
          stalled
            ? new UpstreamError(`${what}: body stalled for ${ms}ms`, 504)
            : err instanceof UpstreamError
              ? err
              : new UpstreamError(`${what}: ${(err as Error).message}`),
        );
        reader.cancel().catch(() => {});
      }
    },
    cancel(reason) {
      stop();
      abort();
      return reader.cancel(reason).catch(() => {});
    },
  });
}

async function fetchFile(u: Upstream, rel: string): Promise<FetchResult> {
  const base = resolve(u.dir!);
  const path = resolve(join(base, rel));
  if (!path.startsWith(base + sep)) return { ok: false, status: 404, message: "not found", from: u.url };
  let fh;
  try {
    fh = await open(path, "r");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") return { ok: false, status: 404, message: "not found", from: u.url };
    throw new UpstreamError(`${u.url}/${rel}: ${(err as Error).message}`);
  }
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    return { ok: false, status: 404, message: "not found", from: u.url };
  }
  let pos = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      const buf = new Uint8Array(256 * 1024);
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) {
        await fh.close();
        c.close();
        return;
      }
      pos += bytesRead;
      c.enqueue(buf.subarray(0, bytesRead));
    },
    async cancel() {
      await fh.close();
    },
  });
  return { ok: true, status: 200, body, size: st.size, from: u.url };
}

/**
 * How much of a 404/410 body is read for its message: the go command shows
 * at most 8 lines of 81 bytes of it (cmd/go/internal/web), and we keep 1000
 * characters; the rest is never read.
 */
const NOT_FOUND_BODY_LIMIT = 4096;

/** Reads until the body ends or `limit` bytes are in (the caller cancels the rest). */
async function readPrefix(reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> }, limit: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  while (n < limit) {
    const r = await reader.read();
    if (r.done || !r.value) break;
    chunks.push(r.value);
    n += r.value.length;
  }
  return Buffer.concat(chunks).subarray(0, limit);
}

/**
 * The message of a 404/410 answer, read within `ms`. The headers' timer is
 * done by then, and a body that never ends would otherwise hold this
 * request, and every request waiting on the same path, forever. Throws
 * UpstreamError (504 when it took too long): the upstream failed.
 */
async function notFoundMessage(res: Response, ac: AbortController, url: string, ms: number): Promise<string> {
  if (!res.body) return "not found";
  const reader = res.body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UpstreamError(`${url}: HTTP ${res.status} body not read within ${ms}ms`, 504)), ms);
  });
  try {
    const data = await Promise.race([readPrefix(reader, NOT_FOUND_BODY_LIMIT), late]);
    return new TextDecoder().decode(data).slice(0, 1000) || "not found";
  } catch (err) {
    ac.abort();
    throw err instanceof UpstreamError ? err : new UpstreamError(`${url}: HTTP ${res.status} body: ${(err as Error).message}`, 502, { cause: err });
  } finally {
    clearTimeout(timer);
    reader.cancel().catch(() => {});
  }
}

async function fetchHttp(u: Upstream, rel: string, o: UpstreamOptions): Promise<FetchResult> {
  const url = `${u.url}/${urlPathOf(rel)}`;
  let lastErr: UpstreamError | null = null;
  for (let attempt = 0; attempt <= o.retries; attempt++) {
    if (attempt > 0) await sleep((o.backoffMs ?? 200) * 2 ** (attempt - 1));
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new UpstreamError(`${url}: no answer within ${o.timeoutMs}ms`, 504)), o.timeoutMs);
    const t0 = performance.now();
    let res: Response;
    try {
      res = await fetch(url, { signal: ac.signal, redirect: "follow", headers: { "User-Agent": "gostash-modproxy" } });
    } catch (err) {
      clearTimeout(timer);
      o.onFetch?.(u.url, (performance.now() - t0) / 1000, false);
      const reason = ac.signal.aborted ? ac.signal.reason : err;
      lastErr = reason instanceof UpstreamError ? reason : new UpstreamError(`${url}: ${(reason as Error).message ?? reason}`);
      continue;
    }
    clearTimeout(timer);
    if (res.status === 404 || res.status === 410) {
      try {
        const message = await notFoundMessage(res, ac, url, o.timeoutMs);
        o.onFetch?.(u.url, (performance.now() - t0) / 1000, true);
        return { ok: false, status: res.status, message, from: u.url };
      } catch (err) {
        o.onFetch?.(u.url, (performance.now() - t0) / 1000, false);
        lastErr = err as UpstreamError;
        continue;
      }
    }
    o.onFetch?.(u.url, (performance.now() - t0) / 1000, res.ok);
    if (res.status === 200 && res.body) {
      const len = res.headers.get("content-length");
      return {
        ok: true,
        status: 200,
        body: idleGuard(res.body, o.timeoutMs, () => ac.abort(), url),
        size: len !== null && /^\d+$/.test(len) ? Number(len) : null,
        from: u.url,
      };
    }
    await res.body?.cancel().catch(() => {});
    lastErr = new UpstreamError(`${url}: HTTP ${res.status}`);
    if (res.status === 429 || res.status >= 500) {
      const ra = Number(res.headers.get("retry-after"));
      if (Number.isFinite(ra) && ra > 0 && attempt < o.retries) await sleep(Math.min(ra * 1000, RETRY_AFTER_CAP_MS));
      continue;
    }
    break; // other 4xx: not worth retrying
  }
  throw lastErr ?? new UpstreamError(`${url}: failed`);
}

/**
 * Fetches `rel` (e.g. "github.com/!foo/bar/@v/v1.0.0.zip") through the list.
 * Resolves with a body or a final 404/410; rejects with UpstreamError when
 * the list ends in an error.
 */
export async function fetchUpstream(list: Upstream[], rel: string, o: UpstreamOptions): Promise<FetchResult> {
  let notFound: FetchResult | null = null;
  let lastErr: Error | null = null;
  for (const u of list) {
    if (u.url === "off") {
      if (notFound) return notFound;
      throw lastErr ?? new UpstreamError("module lookup disabled by --upstream=off", 404);
    }
    try {
      const r = u.dir !== undefined ? await fetchFile(u, rel) : await fetchHttp(u, rel, o);
      if (r.ok) return r;
      notFound = r;
      lastErr = null;
      if (u.next === null) return r;
    } catch (err) {
      lastErr = err instanceof UpstreamError ? err : new UpstreamError((err as Error).message);
      notFound = null;
      if (u.next !== "|") throw lastErr;
    }
  }
  if (notFound) return notFound;
  throw lastErr ?? new UpstreamError("no upstream");
}
