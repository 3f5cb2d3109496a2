// Typed settings from checked flag values (flags.ts), with defaults that
// match what the `go` command itself would do. This is the only place flag
// values become settings: commands hand these objects to the subsystems,
// which never see a flag.

import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { ConfigError } from "./error.ts";
import type { Flags } from "./flags.ts";

export interface LogConfig {
  verbose: boolean;
  /** --debug: which subsystems log every request (DEBUG_* bits in util/log.ts). */
  debug: number;
  /** Print the summary at exit (--metrics). */
  metrics: boolean;
}

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
  /** Packs: read (and write, unless readOnly) per go command. */
  prefetch?: boolean;
  /** Toolchain marks (store/toolchain-marks.ts): skip GETs for a toolchain the bucket lacks, mark what it holds. */
  toolchainMarks?: boolean;
  /** Bytes of one pack at most (0 or unset: no limit). */
  maxPackSize?: number;
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

export function logConfig(f: Flags): LogConfig {
  return { verbose: f.bool("verbose"), debug: f.mask("debug"), metrics: f.bool("metrics") };
}

export function localConfig(f: Flags): LocalConfig {
  const dir = f.string("cache-dir");
  return {
    cacheDir: dir ? resolve(dir) : goDefaultCacheDir(),
    maxSize: f.number("max-size"),
    expiryMs: f.number("expiry") || undefined,
  };
}

/** --s3-endpoint-url checked: an http(s) URL (S3-compatible stores: MinIO, R2, versitygw). */
function endpointURL(text: string | undefined, source: string): string | undefined {
  if (text === undefined || text === "") return undefined;
  let u: URL | null = null;
  try {
    u = new URL(text);
  } catch {}
  if (!u || (u.protocol !== "http:" && u.protocol !== "https:") || !u.host) {
    throw new ConfigError(`${source}: ${JSON.stringify(text)} is not an http:// or https:// URL (e.g. https://minio.example:9000)`);
  }
  return text;
}

export function s3Config(f: Flags): S3Config | null {
  const bucket = f.string("bucket")?.trim() ?? "";
  if (!bucket) return null;
  return {
    bucket,
    region: f.string("region"),
    prefix: (f.string("prefix") ?? "").replace(/^\/+|\/+$/g, ""),
    endpoint: endpointURL(f.string("s3-endpoint-url"), f.source("s3-endpoint-url")),
    pathStyle: f.bool("s3-path-style"),
    minUploadSize: f.number("min-upload-size"),
    // 0 means "the default", as in go-cache-plugin.
    uploadConcurrency: f.number("upload-concurrency") || 8,
    concurrency: f.number("concurrency") || 32,
    readOnly: f.bool("read-only"),
    flushTimeoutMs: f.number("flush-timeout"),
    compress: f.bool("compress"),
    timeoutMs: f.number("s3-timeout") || 5_000,
    prefetch: f.bool("prefetch"),
    toolchainMarks: f.bool("toolchain-marks"),
    maxPackSize: f.number("max-pack-size"),
    maxPutSize: f.number("max-put-size"),
    uploadQueueBytes: f.number("upload-queue-bytes"),
    requestTimeoutMs: f.number("request-timeout"),
  };
}

/** Bun.serve's idleTimeout is whole seconds, at most 255. */
const MAX_HTTP_IDLE_SEC = 255;

export function limitsConfig(f: Flags): LimitsConfig {
  const httpIdleMs = f.number("http-idle-timeout");
  if (httpIdleMs > MAX_HTTP_IDLE_SEC * 1000) {
    throw new ConfigError(`${f.source("http-idle-timeout")}: at most ${MAX_HTTP_IDLE_SEC}s (Bun's limit)`);
  }
  return {
    maxConnections: f.number("max-connections"),
    maxInflight: f.number("max-inflight"),
    idleTimeoutMs: f.number("idle-timeout"),
    maxHttpRequests: f.number("max-http-requests"),
    maxHttpBody: f.number("max-http-body"),
    // A non-zero timeout below one second still means "a timeout".
    httpIdleTimeoutSec: httpIdleMs === 0 ? 0 : Math.max(1, Math.round(httpIdleMs / 1000)),
  };
}
