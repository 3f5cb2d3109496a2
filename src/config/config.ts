// Turns resolved flag values into the typed settings the stores use, with
// defaults that match what the `go` command itself would do.

import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import type { FlagValues } from "./flags.ts";
import { parseDuration, parseSize } from "./units.ts";

export interface LocalConfig {
  cacheDir: string;
  maxSize: number; // 0: no cap
  expiryMs?: number; // undefined: Go's 5 days
}

export interface S3Config {
  bucket: string;
  region?: string;
  prefix: string;
  endpoint?: string;
  pathStyle: boolean;
  minUploadSize: number;
  uploadConcurrency: number;
  concurrency: number;
  readOnly: boolean;
  flushTimeoutMs: number;
  compress: boolean;
  /** A remote request (or a stalled body) is given up after this long. */
  timeoutMs: number;
  /** Build manifests: download what the last same build used, ahead of the gets. */
  prefetch?: boolean;
  /** Outputs larger than this are never uploaded (0 or unset: no limit). */
  maxPutSize?: number;
  /** Bytes waiting for or in upload; beyond it uploads are dropped (0 or unset: no limit). */
  uploadQueueBytes?: number;
  /** A get not served within this long is answered as a miss (0 or unset: no limit). */
  requestTimeoutMs?: number;
}

/** The daemon's resource limits (0 everywhere means no limit). */
export interface LimitsConfig {
  maxConnections: number;
  maxInflight: number;
  idleTimeoutMs: number;
  maxHttpRequests: number;
  maxHttpBody: number;
  /** Whole seconds, as Bun.serve takes them. */
  httpIdleTimeoutSec: number;
}

/** Go's default GOCACHE: os.UserCacheDir()/go-build. */
export function goDefaultCacheDir(env: Record<string, string | undefined> = process.env): string {
  const gocache = env.GOCACHE;
  if (gocache && gocache !== "off" && isAbsolute(gocache)) return gocache;
  let base: string;
  if (process.platform === "darwin") base = join(env.HOME ?? homedir(), "Library", "Caches");
  else if (process.platform === "win32") base = env.LocalAppData ?? join(homedir(), "AppData", "Local");
  else base = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : join(env.HOME ?? homedir(), ".cache");
  return join(base, "go-build");
}

function int(v: string | boolean | undefined, what: string, def: number): number {
  if (v === undefined || v === "") return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`config: ${what} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

export function localConfig(f: FlagValues): LocalConfig {
  const dir = typeof f["cache-dir"] === "string" && f["cache-dir"] ? resolve(f["cache-dir"]) : goDefaultCacheDir();
  return {
    cacheDir: dir,
    maxSize: typeof f["max-size"] === "string" && f["max-size"] ? parseSize(f["max-size"], "--max-size") : 0,
    expiryMs: typeof f.expiry === "string" && f.expiry ? parseDuration(f.expiry, "--expiry") : undefined,
  };
}

export function s3Config(f: FlagValues): S3Config | null {
  const bucket = typeof f.bucket === "string" ? f.bucket.trim() : "";
  if (!bucket) return null;
  const str = (k: string) => (typeof f[k] === "string" && f[k] ? (f[k] as string) : undefined);
  return {
    bucket,
    region: str("region"),
    prefix: (str("prefix") ?? "").replace(/^\/+|\/+$/g, ""),
    endpoint: str("s3-endpoint-url"),
    pathStyle: f["s3-path-style"] === true,
    minUploadSize: str("min-upload-size") ? parseSize(str("min-upload-size")!, "--min-upload-size") : 0,
    uploadConcurrency: int(f["upload-concurrency"], "--upload-concurrency", 8) || 8,
    concurrency: int(f.concurrency, "--concurrency", 32) || 32,
    readOnly: f["read-only"] === true,
    flushTimeoutMs: str("flush-timeout") ? parseDuration(str("flush-timeout")!, "--flush-timeout") : 30_000,
    compress: f.compress !== false,
    timeoutMs: str("s3-timeout") ? parseDuration(str("s3-timeout")!, "--s3-timeout") : 5_000,
    prefetch: f.prefetch !== false,
    maxPutSize: str("max-put-size") ? parseSize(str("max-put-size")!, "--max-put-size") : 1024 ** 3,
    uploadQueueBytes: str("upload-queue-bytes") ? parseSize(str("upload-queue-bytes")!, "--upload-queue-bytes") : 2 * 1024 ** 3,
    requestTimeoutMs: str("request-timeout") ? parseDuration(str("request-timeout")!, "--request-timeout") : 30_000,
  };
}

/** Bun.serve's idleTimeout is whole seconds, at most 255. */
const MAX_HTTP_IDLE_SEC = 255;

export function limitsConfig(f: FlagValues): LimitsConfig {
  const str = (k: string) => (typeof f[k] === "string" && f[k] ? (f[k] as string) : undefined);
  const httpIdleMs = str("http-idle-timeout") ? parseDuration(str("http-idle-timeout")!, "--http-idle-timeout") : 120_000;
  if (httpIdleMs > MAX_HTTP_IDLE_SEC * 1000) {
    throw new Error(`config: --http-idle-timeout: at most ${MAX_HTTP_IDLE_SEC}s (Bun's limit), got ${str("http-idle-timeout")}`);
  }
  return {
    maxConnections: int(f["max-connections"], "--max-connections", 512),
    maxInflight: int(f["max-inflight"], "--max-inflight", 256),
    idleTimeoutMs: str("idle-timeout") ? parseDuration(str("idle-timeout")!, "--idle-timeout") : 600_000,
    maxHttpRequests: int(f["max-http-requests"], "--max-http-requests", 256),
    maxHttpBody: str("max-http-body") ? parseSize(str("max-http-body")!, "--max-http-body") : 1024 ** 2,
    // A non-zero timeout below one second still means "a timeout".
    httpIdleTimeoutSec: httpIdleMs === 0 ? 0 : Math.max(1, Math.round(httpIdleMs / 1000)),
  };
}
