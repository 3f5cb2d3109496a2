// The build cache with a shared S3 tier behind the local disk: the policy
// (which tier answers, when to give up, what to upload). The objects' layout
// and integrity check live in store/s3-objects.ts; every request goes
// through s3/client.ts (timeouts, retries, breaker, region).
//
// get: the local disk first (synchronous, no promise); on a local miss, one
//   GET of the action object, verified while it lands in the local store.
//   Concurrent gets of one action share one download (util/singleflight).
//   Every remote problem (timeout, refused connection, 5xx, auth, a cut or
//   altered body) is a miss plus a metric; the client's circuit breaker
//   skips S3 for a while after repeated failures.
// put: written locally and answered at once; the upload happens later
//   through the client's bounded queue. Outputs below --min-upload-size or
//   above --max-put-size stay local (the go command needs a DiskPath for
//   every put: an error answer fails `go build` itself, through the module
//   index); --read-only never writes.
// Limits: a get the shared tier has not served within --request-timeout is
//   answered as a miss (request_timeouts); the download goes on and lands
//   in the local store for the next get. Each limit says once (warning)
//   which flag raises it, and counts every time.
// close: flushes the uploads with a deadline (--flush-timeout) and counts
//   what was left (upload_left). The daemon never closes the shared cache
//   per connection; it flushes on shutdown.
// prefetch (direct mode): on the first local miss, the build manifest of
//   the same command is fetched and the actions it lists are downloaded
//   ahead of the go command's gets (prefetch.ts).

import type { CacheHandler, PutWriter } from "../cacheprog/session.ts";
import type { S3Config } from "../config/config.ts";
import { formatBytes } from "../config/units.ts";
import type { S3Client } from "../s3/client.ts";
import { RemoteError, asRemoteError } from "../s3/errors.ts";
import type { DiskStore, StoredOutput } from "../store/disk.ts";
import { nowNanos } from "../store/disk.ts";
import { actionObject, downloadOutput, uploadOutput, type OutputFile } from "../store/s3-objects.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { Semaphore } from "../util/semaphore.ts";
import { SingleFlight } from "../util/singleflight.ts";
import { countGet, localPut } from "./local.ts";
import { createPrefetcher, type Prefetcher } from "./prefetch.ts";

export interface TieredOptions {
  disk: DiskStore;
  client: S3Client;
  s3: S3Config;
  metrics: Metrics;
  logger: Logger;
  /** Build manifests and prefetch: one go command per cache (direct mode). */
  prefetch?: boolean;
}

export interface TieredCache extends CacheHandler {
  /** Waits for pending uploads, at most timeoutMs; returns how many were left. */
  flush(timeoutMs: number): Promise<{ left: number }>;
  readonly client: S3Client;
}

export function createTieredCache(o: TieredOptions): TieredCache {
  const { disk, client, s3, metrics, logger } = o;
  const downloads = new Semaphore(Math.max(1, s3.concurrency));
  const flights = new SingleFlight<StoredOutput | null>();
  const warnOnce = onceWarner(logger);
  const prefetch = o.prefetch && s3.prefetch !== false ? makePrefetcher() : null;

  function remoteFailed(err: unknown, actionID: string): void {
    const e = asRemoteError(err, `s3: get ${actionID}`);
    if (e.kind === "badobject") {
      metrics.inc("integrity_failures");
      logger.warn(`${e.message}; treated as a miss`);
      return;
    }
    if (e.kind === "unavailable") {
      metrics.inc("remote_skipped");
      return;
    }
    metrics.inc("remote_errors");
    metrics.inc(`remote_errors_${e.kind}`);
  }

  async function remoteGet(actionID: string): Promise<StoredOutput | null> {
    if (client.breaker.state === "open") {
      // Not even queued for a download slot while the bucket is resting.
      metrics.inc("remote_skipped");
      return null;
    }
    await downloads.acquire();
    metrics.inc("remote_gets");
    const t0 = performance.now();
    try {
      const out = await downloadOutput(client, disk, actionID, (n) => metrics.inc("bytes_down", n));
      if (!out) {
        metrics.inc("remote_misses");
        return null;
      }
      // It came from the bucket: no need to send it back.
      client.uploads.markSeen(client.key(actionObject(actionID)));
      return out;
    } catch (err) {
      remoteFailed(err, actionID);
      return null;
    } finally {
      downloads.release();
      metrics.observe("remote_get_seconds", (performance.now() - t0) / 1000);
    }
  }

  /** One download per action, shared by the go command's gets and the prefetcher. */
  function remote(actionID: string): Promise<StoredOutput | null> {
    return flights.do(actionID, () => remoteGet(actionID)).promise;
  }

  /** Answers null (a miss) if the remote get takes longer than --request-timeout. */
  function deadline(p: Promise<StoredOutput | null>): Promise<StoredOutput | null> {
    const ms = s3.requestTimeoutMs ?? 0;
    if (ms <= 0) return p;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        metrics.inc("request_timeouts");
        warnOnce(
          "request_timeouts",
          `s3: a get took longer than --request-timeout ${ms}ms (GOSTASH_REQUEST_TIMEOUT); answered as a miss, the download goes on in the background`,
        );
        resolve(null);
      }, ms);
      const settle = (h: StoredOutput | null) => {
        clearTimeout(t);
        resolve(h);
      };
      p.then(settle, () => settle(null));
    });
  }

  async function upload(f: OutputFile): Promise<void> {
    const t0 = performance.now();
    let sent: number | null;
    try {
      sent = await uploadOutput(client, f, s3.compress);
    } catch (err) {
      const e = err as RemoteError;
      metrics.inc("upload_errors");
      if (e instanceof RemoteError && e.kind === "unavailable") metrics.inc("upload_skipped_breaker");
      logger.debug(`${e?.message ?? e}; not uploaded`);
      return;
    }
    if (sent === null) {
      // Trimmed or cleaned away since the put: nothing to upload.
      metrics.inc("upload_errors");
      return;
    }
    metrics.inc("uploads");
    metrics.inc("bytes_up", sent);
    metrics.observe("upload_seconds", (performance.now() - t0) / 1000);
  }

  /** Is this output to be uploaded at all? Counts and warns about the limit it hits. */
  function wantsUpload(size: number): boolean {
    if (s3.readOnly || size < s3.minUploadSize) return false;
    const max = s3.maxPutSize ?? 0;
    if (max > 0 && size > max) {
      metrics.inc("puts_over_limit");
      warnOnce(
        "puts_over_limit",
        `s3: an output of ${formatBytes(size)} is over --max-put-size ${formatBytes(max)} (GOSTASH_MAX_PUT_SIZE); kept on the local disk only, not uploaded`,
      );
      return false;
    }
    return true;
  }

  function makePrefetcher(): Prefetcher {
    return createPrefetcher({
      client,
      haveLocally: (id) => flights.has(id) || disk.get(id) !== null,
      fetch: remote,
      workers: Math.max(1, Math.min(16, Math.floor(s3.concurrency / 2))),
      readOnly: s3.readOnly,
      metrics,
      logger,
    });
  }

  return {
    client,
    flush: (ms) => client.uploads.flush(ms),

    get(actionID: string): StoredOutput | null | Promise<StoredOutput | null> {
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
      const w = localPut(disk, metrics, actionID, outputID, size);
      if (!wantsUpload(size)) return w;
      return {
        write: (bytes) => w.write(bytes),
        abort: () => w.abort(),
        commit() {
          const diskPath = w.commit() as string;
          const f: OutputFile = { actionID, outputID, size, timeNanos: nowNanos(), diskPath };
          client.uploads.enqueue({ key: client.key(actionObject(actionID)), size, run: () => upload(f) });
          return diskPath;
        },
      };
    },

    async close() {
      try {
        const manifest = prefetch?.close(Math.min(s3.flushTimeoutMs, 5_000));
        const { left } = await client.uploads.flush(s3.flushTimeoutMs);
        await manifest;
        if (left > 0) {
          metrics.inc("upload_left", left);
          logger.warn(`s3: ${left} upload(s) not finished within the flush deadline of ${s3.flushTimeoutMs}ms; they stay local`);
        }
        client.uploads.stop();
      } finally {
        client.close();
      }
    },
  };
}

/** The first time a limit is reached it is a warning naming its flag; later only counted. */
function onceWarner(logger: Logger): (what: string, message: string) => void {
  const warned = new Set<string>();
  return (what, message) => {
    if (warned.has(what)) return logger.debug(message);
    warned.add(what);
    logger.warn(`${message} (counted in ${what} from now on)`);
  };
}
