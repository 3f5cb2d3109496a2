// The one module that talks to a bucket: every S3 request gostash makes
// (build-cache objects, packs, the module mirror) is built,
// signed and sent here, with one policy for all of them:
//
// - Addressing: virtual-hosted style (`<bucket>.<host>`) unless
//   --s3-path-style or the bucket name has a dot; --s3-endpoint-url for
//   S3-compatible stores (R2, MinIO, versitygw, ...).
// - Region: --region, else requests start in us-east-1 and follow the
//   region S3 names in x-amz-bucket-region (once), so nothing waits for a
//   region lookup before the first request.
// - Timeouts: a request whose answer, or next body chunk, takes longer than
//   --s3-timeout is given up (a PUT gets 1 ms more per KiB of body).
// - Retries: PUTs are retried twice (after 100 ms and 400 ms) on a timeout,
//   a network error or a 5xx; GETs are not (a late hit is worth less than a
//   quick miss: the go command is waiting).
// - Breaker: after repeated failures of the bucket itself (timeouts,
//   network errors, 5xx) requests are not sent for a while (util/breaker.ts)
//   and fail at once as "unavailable"; a 404 or a 403 is an answer, not a
//   failure.
// - Reporting: the first failure of a run, and the first after the bucket
//   answered again, is logged at the default level with its HTTP status,
//   S3 error code and a hint; repeats are only counted (s3_errors).
// - Checksums: none are sent or checked (UNSIGNED-PAYLOAD, no
//   x-amz-checksum-*): flexible checksums break several S3-compatible
//   stores, and every layout checks its own content end to end.
//
// Why the SDK's signer and Bun's fetch instead of @aws-sdk/client-s3's
// commands: measured here, a small GET cost ~0.9 ms through fetch against
// ~4.8 ms through the SDK's client and HTTP stack, importing the client
// cost ~100 ms before the first remote answer of a plugin run, and fetch
// streams request and response bodies (Bun.file uploads, streamed
// downloads) without buffering them. The credential chain is the SDK's own
// (signer.ts), so every way of getting credentials still works.
//
// Keys: callers name objects without the prefix (`ab/<actionhex>`,
// `mod/...`); the client adds `[prefix/]`.

import type { S3Config } from "../config/config.ts";
import { Breaker } from "../util/breaker.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { RemoteError, asRemoteError } from "./errors.ts";
import { failureHint } from "./hints.ts";
import { LastBucketError } from "./last-error.ts";
import { loadSigner, type Signer } from "./signer.ts";
import { UploadQueue } from "./upload-queue.ts";

export interface S3Object {
  /** 200, or 206 for a range. */
  status: number;
  /** x-amz-meta-* headers, without the prefix. */
  metadata: Record<string, string>;
  /** Bytes in the body as sent, if the server said. */
  contentLength: number | undefined;
  /** The body; throws RemoteError on a stall, a cut or a cancel. */
  body: AsyncIterable<Uint8Array>;
  /** Stop reading and release the connection. */
  cancel(): void;
}

export interface PutOptions {
  metadata?: Record<string, string>;
  contentType?: string;
}

export interface S3Client {
  readonly bucket: string;
  /** The full key of a name: `[prefix/]name`. */
  key(name: string): string;
  /** The object, or null if there is none (404). `range` is [first, last] byte, inclusive. */
  get(name: string, o?: { range?: [number, number] }): Promise<S3Object | null>;
  /** A small object whole (at most maxBytes), or null (404). */
  getBytes(name: string, maxBytes?: number): Promise<Uint8Array | null>;
  put(name: string, body: Uint8Array | Blob, o?: PutOptions): Promise<void>;
  /** Background uploads to this bucket, bounded (upload-queue.ts). */
  readonly uploads: UploadQueue;
  readonly breaker: Breaker;
  /** The last failure with its cause, and whether the latest request failed (for the status page). */
  readonly lastError: LastBucketError;
  close(): void;
}

export interface S3ClientDeps {
  logger: Logger;
  metrics: Metrics;
  /** For tests: a breaker with its own clock and thresholds. */
  breaker?: Breaker;
  /** Upload jobs that may wait; more are dropped. */
  queueCapacity?: number;
}

const PUT_ATTEMPTS = 3;
const DEFAULT_MAX_BYTES = 64 << 20;

/** RFC 3986 encoding of one path segment, as SigV4 wants it. */
function encodeSegment(seg: string): string {
  return encodeURIComponent(seg).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function createS3Client(cfg: S3Config, deps: S3ClientDeps): S3Client {
  return new BucketClient(cfg, deps);
}

type Body = Uint8Array | Blob;

class BucketClient implements S3Client {
  readonly bucket: string;
  readonly breaker: Breaker;
  readonly uploads: UploadQueue;
  readonly lastError = new LastBucketError();
  private readonly timeoutMs: number;
  private readonly endpoint: URL | null;
  private region: string;
  private signer: Promise<Signer> | null = null;
  private closed = false;
  /** The first failure since start (or since the bucket answered again) has been logged. */
  private reported = false;

  constructor(
    private readonly cfg: S3Config,
    private readonly deps: S3ClientDeps,
  ) {
    const { logger, metrics } = deps;
    this.bucket = cfg.bucket;
    this.timeoutMs = cfg.timeoutMs || 5_000;
    this.region = cfg.region ?? "us-east-1";
    this.endpoint = cfg.endpoint ? new URL(cfg.endpoint) : null;
    this.breaker =
      deps.breaker ??
      new Breaker({
        onTrip(n, ms) {
          metrics.inc("breaker_trips");
          logger.warn(`s3: ${n} failures in a row; not calling S3 for ${(ms / 1000).toFixed(0)}s (builds go on from the local cache)`);
        },
        onReset: () => {
          this.reported = false;
          logger.info("s3: S3 answers again");
        },
      });
    this.uploads = new UploadQueue({
      capacity: deps.queueCapacity ?? 4096,
      capacityBytes: cfg.uploadQueueBytes ?? 0,
      concurrency: Math.max(1, cfg.uploadConcurrency),
      metrics,
      logger,
    });
  }

  key(name: string): string {
    return this.cfg.prefix ? `${this.cfg.prefix}/${name}` : name;
  }

  close(): void {
    this.closed = true;
    this.signer = null;
  }

  async get(name: string, o: { range?: [number, number] } = {}): Promise<S3Object | null> {
    const key = this.key(name);
    const what = `s3: get ${key}`;
    return this.guarded(what, async () => {
      const ctl = new AbortController();
      const headers: Record<string, string> = o.range ? { range: `bytes=${o.range[0]}-${o.range[1]}` } : {};
      const res = await this.send("GET", key, { headers, ms: this.timeoutMs, ctl });
      if (res.status === 404) {
        // A missing key is a miss; a missing bucket is a misconfiguration.
        const err = await failure(res, what);
        if (err.code === "NoSuchBucket") throw err;
        return null;
      }
      if (res.status !== 200 && res.status !== 206) throw await failure(res, what);
      const metadata: Record<string, string> = {};
      res.headers.forEach((v, k) => {
        if (k.startsWith("x-amz-meta-")) metadata[k.slice(11)] = v;
      });
      const cl = res.headers.get("content-length");
      return { status: res.status, metadata, contentLength: cl !== null ? Number(cl) : undefined, body: this.streamBody(res, key, ctl), cancel: () => ctl.abort() };
    });
  }

  async getBytes(name: string, maxBytes = DEFAULT_MAX_BYTES): Promise<Uint8Array | null> {
    const obj = await this.get(name);
    if (!obj) return null;
    const tooBig = () => {
      obj.cancel();
      return new RemoteError("badobject", `s3: get ${this.key(name)}: more than the ${maxBytes} bytes expected`);
    };
    if (obj.contentLength !== undefined && obj.contentLength > maxBytes) throw tooBig();
    const parts: Uint8Array[] = [];
    let n = 0;
    for await (const c of obj.body) {
      n += c.length;
      if (n > maxBytes) throw tooBig();
      parts.push(c);
    }
    return new Uint8Array(Buffer.concat(parts));
  }

  async put(name: string, body: Body, o: PutOptions = {}): Promise<void> {
    const key = this.key(name);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.guarded(`s3: put ${key}`, () => this.putOnce(key, body, o));
      } catch (err) {
        const e = err as RemoteError;
        if (attempt >= PUT_ATTEMPTS || !e.backendFault) throw e;
        await Bun.sleep(100 * 4 ** (attempt - 1));
      }
    }
  }

  private async putOnce(key: string, body: Body, o: PutOptions): Promise<void> {
    const size = body instanceof Blob ? body.size : body.length;
    const headers: Record<string, string> = { "content-type": o.contentType ?? "application/octet-stream", "content-length": String(size) };
    for (const [k, v] of Object.entries(o.metadata ?? {})) headers[`x-amz-meta-${k}`] = v;
    // Large bodies get time to travel: at least 1 MiB/s on top of the timeout.
    const res = await this.send("PUT", key, { headers, body, ms: this.timeoutMs + Math.ceil(size / 1024), ctl: new AbortController() });
    if (res.status !== 200) throw await failure(res, `s3: put ${key}`);
    await res.arrayBuffer().catch(() => {});
  }

  /** Runs one request through the breaker: refused at once while it is open. */
  private async guarded<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (!this.breaker.allow()) {
      this.deps.metrics.inc("s3_skipped");
      throw new RemoteError("unavailable", `${what}: not calling S3 for now (it failed repeatedly)`);
    }
    try {
      const out = await fn();
      this.breaker.success();
      this.lastError.answered();
      return out;
    } catch (err) {
      throw this.failed(asRemoteError(err, what));
    }
  }

  /** Counts a failure, logs the first of a run (or after a recovery), and feeds the breaker. */
  private failed(err: RemoteError): RemoteError {
    this.deps.metrics.inc("s3_errors");
    this.lastError.failed(err, failureHint(err, this.cfg));
    if (err.backendFault) this.breaker.failure();
    else this.breaker.success();
    if (!this.reported) {
      this.reported = true;
      this.deps.logger.warn(`${err.message}${failureHint(err, this.cfg)} (later S3 failures are counted in s3_errors; -v shows them)`);
    } else this.deps.logger.debug(err.message);
    return err;
  }

  /** One request with a deadline; follows the bucket's region once. */
  private async send(method: string, key: string, o: { headers?: Record<string, string>; body?: Body; ms: number; ctl: AbortController }): Promise<Response> {
    const what = `s3: ${method.toLowerCase()} ${key}`;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      o.ctl.abort();
    }, o.ms);
    try {
      const res = await this.signedFetch(method, key, o.headers ?? {}, o.body, o.ctl.signal);
      if (!this.followsRegion(res)) return res;
      await res.arrayBuffer().catch(() => {});
      clearTimeout(timer);
      return await this.send(method, key, { ...o, ctl: new AbortController() });
    } catch (err) {
      if (err instanceof RemoteError) throw err;
      if (timedOut) throw new RemoteError("timeout", `${what}: no answer within ${o.ms}ms`);
      throw new RemoteError("network", `${what}: ${(err as Error)?.name ?? "Error"}: ${(err as Error)?.message ?? err}`, undefined, undefined, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Without --region, S3 names the bucket's region on a redirect: switch to it (once). */
  private followsRegion(res: Response): boolean {
    const bucketRegion = res.headers.get("x-amz-bucket-region");
    if (this.cfg.region || !bucketRegion || bucketRegion === this.region || ![301, 307, 400].includes(res.status)) return false;
    this.region = bucketRegion;
    this.signer = null;
    return true;
  }

  private async signedFetch(method: string, key: string, headers: Record<string, string>, body: Body | undefined, signal: AbortSignal): Promise<Response> {
    let s: Signer;
    try {
      s = await this.loadSigner();
    } catch (err) {
      throw new RemoteError("network", `s3: loading the AWS SDK failed: ${(err as Error)?.message ?? err}`, undefined, undefined, { cause: err });
    }
    if (this.closed) throw new RemoteError("network", "s3: client closed");
    const t = this.target(key);
    const u = new URL(t.url);
    const all = { host: t.host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", ...headers };
    const req = { method, protocol: u.protocol, hostname: u.hostname, port: u.port ? Number(u.port) : undefined, path: t.path, query: {}, headers: all };
    const signed = await s.sign(req);
    this.deps.metrics.inc("s3_requests");
    return await fetch(t.url, { method, headers: signed.headers, body, signal, redirect: "manual", decompress: false } as RequestInit);
  }

  private loadSigner(): Promise<Signer> {
    if (!this.signer) {
      const p = loadSigner(this.region);
      this.signer = p;
      // A failed load is retried by the next request rather than never.
      p.catch(() => {
        if (this.signer === p) this.signer = null;
      });
    }
    return this.signer;
  }

  private target(key: string): { url: string; host: string; path: string } {
    const keyPath = key.split("/").map(encodeSegment).join("/");
    const virtual = !this.cfg.pathStyle && !this.bucket.includes(".");
    const base = this.endpoint ? this.endpoint.pathname.replace(/\/+$/, "") : "";
    const host0 = this.endpoint ? this.endpoint.host : `s3.${this.region}.amazonaws.com`;
    const host = virtual ? `${this.bucket}.${host0}` : host0;
    const path = virtual ? `${base}/${keyPath}` : `${base}/${encodeSegment(this.bucket)}/${keyPath}`;
    return { url: `${this.endpoint ? this.endpoint.protocol : "https:"}//${host}${path}`, host, path };
  }

  /**
   * The body, with an idle timer: a body that stalls longer than the timeout
   * is cut. The timer runs only while the reader waits for the bucket: time
   * the reader spends with a chunk (landing threads busy in a loaded
   * daemon) is not the bucket's silence.
   */
  private streamBody(res: Response, key: string, ctl: AbortController): AsyncIterable<Uint8Array> {
    const stream = res.body as unknown as AsyncIterable<Uint8Array> | null;
    const ms = this.timeoutMs;
    const failed = (e: RemoteError) => this.failed(e);
    return (async function* () {
      if (!stream) return;
      let stalled = false;
      const arm = () => setTimeout(() => ((stalled = true), ctl.abort()), ms);
      let timer = arm();
      try {
        for await (const chunk of stream) {
          clearTimeout(timer);
          yield chunk;
          timer = arm();
        }
      } catch (err) {
        if (stalled) throw failed(new RemoteError("timeout", `s3: get ${key}: body stalled for ${ms}ms`));
        throw failed(new RemoteError("network", `s3: get ${key}: reading body: ${(err as Error)?.message ?? err}`, undefined, undefined, { cause: err }));
      } finally {
        clearTimeout(timer);
      }
      if (stalled) throw failed(new RemoteError("timeout", `s3: get ${key}: body stalled for ${ms}ms`));
    })();
  }
}

/** The error an unexpected answer means, with the S3 error code from its body. */
async function failure(res: Response, what: string): Promise<RemoteError> {
  let code = "";
  try {
    code = /<Code>([^<]*)<\/Code>/.exec(await res.text())?.[1] ?? "";
  } catch {}
  const kind = res.status === 401 || res.status === 403 ? "auth" : "http";
  return new RemoteError(kind, `${what}: HTTP ${res.status}${code ? ` ${code}` : ""}`, res.status, code || undefined);
}
