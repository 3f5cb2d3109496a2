// The build cache with a shared S3 tier behind the local disk.
//
// get: the local disk first (synchronous, no promise); on a local miss, one
//   GET of the action object (layout in s3.ts). The body is hashed while it
//   streams into the local store through disk.put, and committed only if its
//   SHA-256 and size match the object's metadata; anything else is a miss
//   (integrity_failures), never served. Concurrent gets of one action share
//   one download. Every remote problem (timeout, refused connection, 5xx,
//   auth, a cut body) is a miss plus a metric; after repeated failures a
//   circuit breaker skips S3 for a while, then tries again.
// put: written locally and answered at once; the upload happens later
//   through a bounded queue with its own concurrency (upload-queue.ts).
//   Outputs below --min-upload-size or above --max-put-size stay local
//   (the go command needs a DiskPath for every put: an error answer fails
//   `go build` itself, through the module index); --read-only never writes.
//   The queue drops uploads beyond its job and byte limits.
// Limits: a get the shared tier has not served within --request-timeout is
//   answered as a miss (request_timeouts); the download goes on and lands
//   in the local store for the next get. Puts are never timed out: they
//   are local writes, and their uploads are already in the background.
//   Each limit says once (warning) which flag raises it, and counts every time.
// close: flushes the queue with a deadline (--flush-timeout) and counts what
//   was left (upload_left). The daemon calls flush() itself as it likes.
// prefetch (direct mode, --prefetch): on the first local miss, the build
//   manifest of the same command is fetched and the actions it lists are
//   downloaded ahead of the go command's gets (prefetch.ts).

import type { Hit } from "../cacheprog/protocol.ts";
import type { CacheHandler, PutWriter } from "../cacheprog/session.ts";
import type { S3Config } from "../config/config.ts";
import { formatBytes } from "../config/units.ts";
import { Breaker } from "../util/breaker.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { Semaphore } from "../util/semaphore.ts";
import { nowNanos, type DiskPut, type DiskStore } from "./disk.ts";
import { countGet } from "./local-cache.ts";
import { createPrefetcher } from "./prefetch.ts";
import { createS3Store, RemoteError, type ObjectMeta, type S3Store } from "./s3.ts";
import { UploadQueue } from "./upload-queue.ts";

export interface TieredOptions {
  disk: DiskStore;
  local: CacheHandler;
  s3: S3Config;
  metrics: Metrics;
  logger: Logger;
  /** For tests: a store to use instead of one made from `s3`. */
  store?: S3Store;
  /** Upload jobs that may wait; more are dropped (default 4096). */
  queueCapacity?: number;
  breaker?: Breaker;
  /** Build manifests and prefetch: one go command per cache (direct mode). */
  prefetch?: boolean;
}

export interface TieredCache extends CacheHandler {
  /** Waits for pending uploads, at most timeoutMs; returns how many were left. */
  flush(timeoutMs: number): Promise<{ left: number }>;
  readonly uploadQueue: UploadQueue<UploadJob>;
  readonly breaker: Breaker;
}

export interface UploadJob {
  actionID: string;
  outputID: string;
  size: number;
  timeNanos: bigint;
  diskPath: string;
}

/** Outputs in this range are zstd-compressed when that saves at least 5%. */
const COMPRESS_MIN = 512;
const COMPRESS_MAX = 64 << 20;
/** A compressed body larger than this is not buffered for decompression. */
const MAX_COMPRESSED_BODY = COMPRESS_MAX + (1 << 20);
const UPLOAD_ATTEMPTS = 3;

export function createTieredCache(o: TieredOptions): TieredCache {
  const { disk, local, s3, metrics, logger } = o;
  const timeoutMs = s3.timeoutMs ?? 5_000;
  const store =
    o.store ??
    createS3Store(s3, {
      timeoutMs,
      maxSockets: s3.concurrency + s3.uploadConcurrency,
    });
  const breaker =
    o.breaker ??
    new Breaker({
      threshold: 5,
      cooldownMs: 5_000,
      maxCooldownMs: 60_000,
      onTrip(n, ms) {
        metrics.inc("breaker_trips");
        logger.warn(`s3: ${n} failures in a row; not calling S3 for ${(ms / 1000).toFixed(0)}s (builds go on from the local cache)`);
      },
      onReset() {
        logger.info("s3: S3 answers again");
      },
    });
  const downloads = new Semaphore(Math.max(1, s3.concurrency));
  const maxPutSize = s3.maxPutSize ?? 0;
  const requestTimeoutMs = s3.requestTimeoutMs ?? 0;
  const warned = new Set<string>();
  /** The first time a limit is reached it is a warning naming its flag; later only counted. */
  const limitReached = (what: string, message: string) => {
    if (warned.has(what)) return logger.debug(message);
    warned.add(what);
    logger.warn(`${message} (counted in ${what} from now on)`);
  };
  const inflight = new Map<string, Promise<Hit | null>>();

  function remoteFailed(err: unknown, what: string): void {
    const e = err instanceof RemoteError ? err : new RemoteError("network", `${what}: ${(err as Error)?.message ?? err}`);
    if (e.kind === "badobject") {
      metrics.inc("integrity_failures");
      logger.warn(`${e.message}; treated as a miss`);
      breaker.success();
      return;
    }
    metrics.inc("remote_errors");
    metrics.inc(`remote_errors_${e.kind}`);
    if (e.kind === "auth") {
      // S3 answers 403, not 404, for a missing key when the credentials may
      // not list the bucket, so a denied get is a miss, not a sick backend.
      if (!warnedAuth) logger.warn(`${e.message}; treated as a miss (check the credentials and s3:ListBucket permission)`);
      warnedAuth = true;
      return;
    }
    logger.debug(`${e.message}; treated as a miss`);
    breaker.failure();
  }
  let warnedAuth = false;

  /** Streams a remote object into the local store; the hit, or null. */
  async function land(actionID: string, meta: ObjectMeta, body: AsyncIterable<Uint8Array>, contentLength: number | undefined, cancel: () => void): Promise<Hit | null> {
    const key = store.key(actionID);
    const bad = (why: string) => {
      cancel();
      throw new RemoteError("badobject", `s3: ${key}: ${why}`);
    };
    if (meta.encoding === "identity" && contentLength !== undefined && contentLength !== meta.size) {
      bad(`body is ${contentLength} bytes, metadata says ${meta.size}`);
    }
    if (meta.encoding === "zstd" && contentLength !== undefined && contentLength > MAX_COMPRESSED_BODY) {
      bad(`compressed body of ${contentLength} bytes is too large`);
    }
    const hasher = new Bun.CryptoHasher("sha256");
    let w: DiskPut | null = null;
    let received = 0;
    try {
      if (meta.encoding === "identity") {
        w = disk.put(actionID, meta.outputID, meta.size);
        for await (const chunk of body) {
          received += chunk.length;
          if (w.written + chunk.length > meta.size) bad(`body is longer than the ${meta.size} bytes its metadata says`);
          hasher.update(chunk);
          w.write(chunk);
        }
      } else {
        const parts: Uint8Array[] = [];
        for await (const chunk of body) {
          received += chunk.length;
          if (received > MAX_COMPRESSED_BODY) bad("compressed body is too large");
          parts.push(chunk);
        }
        let out: Uint8Array;
        try {
          out = await Bun.zstdDecompress(Buffer.concat(parts));
        } catch (err) {
          return bad(`zstd body does not decompress: ${(err as Error)?.message ?? err}`);
        }
        if (out.length !== meta.size) bad(`body decompresses to ${out.length} bytes, metadata says ${meta.size}`);
        hasher.update(out);
        w = disk.put(actionID, meta.outputID, meta.size);
        w.write(out);
      }
      metrics.inc("bytes_down", received);
      if (w.written !== meta.size) bad(`body is ${w.written} bytes, metadata says ${meta.size}`);
      const sum = hasher.digest("hex");
      if (sum !== meta.outputID) bad(`SHA-256 of the body is ${sum}, not the output ID ${meta.outputID}`);
      const hit = w.commit(meta.timeNanos);
      w = null;
      return hit;
    } finally {
      w?.abort();
    }
  }

  async function remoteGet(actionID: string): Promise<Hit | null> {
    if (!breaker.allow()) {
      metrics.inc("remote_skipped");
      return null;
    }
    await downloads.acquire();
    metrics.inc("remote_gets");
    const t0 = performance.now();
    try {
      const obj = await store.get(actionID);
      if (!obj) {
        breaker.success();
        metrics.inc("remote_misses");
        return null;
      }
      const hit = await land(actionID, obj.meta, obj.body, obj.contentLength, obj.cancel);
      breaker.success();
      // It came from the bucket: no need to send it back.
      uploads.markSeen(actionID);
      return hit;
    } catch (err) {
      remoteFailed(err, `s3: get ${actionID}`);
      return null;
    } finally {
      downloads.release();
      metrics.observe("remote_get_seconds", (performance.now() - t0) / 1000);
    }
  }

  async function upload(job: UploadJob): Promise<void> {
    const t0 = performance.now();
    const file = Bun.file(job.diskPath);
    let bytes: Uint8Array;
    try {
      bytes = job.size === 0 ? new Uint8Array(0) : await file.bytes();
    } catch (err) {
      // Trimmed or cleaned away since the put: nothing to upload.
      logger.debug(`s3: upload ${job.actionID}: cannot read ${job.diskPath}: ${(err as Error)?.message ?? err}`);
      metrics.inc("upload_errors");
      return;
    }
    if (bytes.length !== job.size) {
      metrics.inc("upload_errors");
      return;
    }
    let encoding: ObjectMeta["encoding"] = "identity";
    let body = bytes;
    if (s3.compress && bytes.length >= COMPRESS_MIN && bytes.length <= COMPRESS_MAX) {
      const z = await Bun.zstdCompress(bytes, { level: 3 });
      if (z.length < bytes.length * 0.95) {
        body = z;
        encoding = "zstd";
      }
    }
    const meta: ObjectMeta = { outputID: job.outputID, size: job.size, timeNanos: job.timeNanos, encoding };
    for (let attempt = 1; ; attempt++) {
      if (!breaker.allow()) {
        metrics.inc("upload_errors");
        metrics.inc("upload_skipped_breaker");
        return;
      }
      try {
        await store.put(job.actionID, meta, body);
        breaker.success();
        metrics.inc("uploads");
        metrics.inc("bytes_up", body.length);
        metrics.observe("upload_seconds", (performance.now() - t0) / 1000);
        return;
      } catch (err) {
        const e = err instanceof RemoteError ? err : new RemoteError("network", String(err));
        breaker.failure();
        if (attempt >= UPLOAD_ATTEMPTS || e.kind === "auth") {
          metrics.inc("upload_errors");
          logger.debug(`${e.message}; not uploaded`);
          return;
        }
        await Bun.sleep(100 * 4 ** (attempt - 1));
      }
    }
  }

  /** Answers null (a miss) if the remote get takes longer than --request-timeout. */
  function deadline(p: Promise<Hit | null>): Promise<Hit | null> {
    if (requestTimeoutMs <= 0) return p;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        metrics.inc("request_timeouts");
        limitReached(
          "request_timeouts",
          `s3: a get took longer than --request-timeout ${requestTimeoutMs}ms (GOSTASH_REQUEST_TIMEOUT); answered as a miss, the download goes on in the background`,
        );
        resolve(null);
      }, requestTimeoutMs);
      p.then(
        (h) => {
          clearTimeout(t);
          resolve(h);
        },
        () => {
          clearTimeout(t);
          resolve(null);
        },
      );
    });
  }

  const uploads = new UploadQueue<UploadJob>({
    capacity: o.queueCapacity ?? 4096,
    capacityBytes: s3.uploadQueueBytes ?? 0,
    sizeOf: (job) => job.size,
    onDrop(limit) {
      if (limit === "bytes") {
        limitReached(
          "upload_drops_bytes",
          `s3: more than --upload-queue-bytes ${formatBytes(s3.uploadQueueBytes ?? 0)} (GOSTASH_UPLOAD_QUEUE_BYTES) waiting for upload; new outputs stay local`,
        );
      } else limitReached("upload_drops", `s3: the upload queue is full (${o.queueCapacity ?? 4096} waiting); new outputs stay local`);
    },
    concurrency: Math.max(1, s3.uploadConcurrency),
    run: upload,
    metrics,
    onError(err, job) {
      metrics.inc("upload_errors");
      logger.debug(`s3: upload ${job.actionID}: ${(err as Error)?.message ?? err}`);
    },
  });

  async function flush(ms: number): Promise<{ left: number }> {
    return uploads.flush(ms);
  }

  /** One download per action, shared by the go command's gets and the prefetcher. */
  function remote(actionID: string): Promise<Hit | null> {
    let p = inflight.get(actionID);
    if (!p) {
      p = remoteGet(actionID).finally(() => inflight.delete(actionID));
      inflight.set(actionID, p);
    }
    return p;
  }

  const prefetch =
    o.prefetch && s3.prefetch !== false
      ? createPrefetcher({
          store,
          haveLocally: (id) => inflight.has(id) || disk.get(id) !== null,
          fetch: remote,
          workers: Math.max(1, Math.min(16, Math.floor(s3.concurrency / 2))),
          readOnly: s3.readOnly,
          metrics,
          logger,
        })
      : null;

  return {
    uploadQueue: uploads,
    breaker,
    flush,

    get(actionID: string): Hit | null | Promise<Hit | null> {
      const t0 = performance.now();
      metrics.inc("gets");
      prefetch?.onGet(actionID);
      const hit = disk.get(actionID);
      if (hit) {
        prefetch?.used(actionID);
        countGet(metrics, t0, hit, "local");
        return hit;
      }
      prefetch?.onLocalMiss();
      return deadline(remote(actionID)).then((h) => {
        if (h) prefetch?.used(actionID);
        countGet(metrics, t0, h, "remote");
        return h;
      });
    },

    put(actionID: string, outputID: string, size: number): PutWriter {
      prefetch?.used(actionID);
      const w = local.put(actionID, outputID, size);
      const upload = !s3.readOnly && size >= s3.minUploadSize;
      if (!upload) return w;
      if (maxPutSize > 0 && size > maxPutSize) {
        metrics.inc("puts_over_limit");
        limitReached(
          "puts_over_limit",
          `s3: an output of ${formatBytes(size)} is over --max-put-size ${formatBytes(maxPutSize)} (GOSTASH_MAX_PUT_SIZE); kept on the local disk only, not uploaded`,
        );
        return w;
      }
      return {
        write: (bytes) => w.write(bytes),
        abort: () => w.abort(),
        commit() {
          const res = w.commit();
          const enqueue = (diskPath: string) => {
            uploads.enqueue(actionID, { actionID, outputID, size, timeNanos: nowNanos(), diskPath });
            return diskPath;
          };
          return typeof res === "string" ? enqueue(res) : res.then(enqueue);
        },
      };
    },

    async close() {
      try {
        const manifest = prefetch?.close(Math.min(s3.flushTimeoutMs, 5_000));
        const { left } = await uploads.flush(s3.flushTimeoutMs);
        await manifest;
        if (left > 0) {
          metrics.inc("upload_left", left);
          logger.warn(`s3: ${left} upload(s) not finished within the flush deadline of ${s3.flushTimeoutMs}ms; they stay local`);
        }
        uploads.stop();
      } finally {
        store.close();
        await local.close();
      }
    },
  };
}
