// Mirrors the module cache to the daemon's S3 bucket, so several daemons
// share one module cache:
//
//   key  [<prefix>/]mod/<URL-layout path>    e.g. mod/github.com/!burnt!sushi/toml/@v/v1.3.2.zip
//
// Only immutable files are mirrored: canonical .info, .mod, .zip, sumdb
// lookups and full tiles (list, @latest, sumdb latest and partial tiles
// change, and are always asked of the upstream). A file stored locally is
// uploaded in the background (a few at a time, never blocking a client);
// on a local miss the bucket is asked before the upstream, and what comes
// from the bucket goes through the same validation as upstream answers.
// With --read-only nothing is uploaded.
//
// Every request goes through the daemon's one S3 client (src/s3/client.ts:
// timeouts, retries, breaker, region) and every upload through its bounded
// queue, shared with the build cache's uploads.

import type { S3Client } from "../../s3/client.ts";
import type { Logger } from "../../util/log.ts";
import type { Metrics } from "../../util/metrics.ts";
import type { FetchResult } from "../upstream/fetch.ts";

export interface Mirror {
  /** The object for rel, or null (missing, or the bucket failed: the upstream is asked instead). */
  get(rel: string): Promise<FetchResult | null>;
  /** Queues an upload of a freshly stored immutable file. */
  put(rel: string, path: string): void;
  /** Waits for queued uploads (up to timeoutMs); returns how many are left. */
  flush(timeoutMs: number): Promise<number>;
}

/** Is this URL-layout path an immutable file worth sharing? */
export function mirrored(rel: string): boolean {
  if (/\/@v\/[^/]+\.(info|mod|zip)$/.test(rel)) return true;
  if (/^sumdb\/[^/]+\/lookup\//.test(rel)) return true;
  return /^sumdb\/[^/]+\/tile\/.*\/[0-9]{3}$/.test(rel) && !rel.includes(".p/");
}

export interface MirrorOptions {
  client: S3Client;
  /** --read-only: read the bucket, never write to it. */
  readOnly: boolean;
  logger: Logger;
  metrics: Metrics;
}

const objectName = (rel: string) => `mod/${rel}`;

export function createS3Mirror(o: MirrorOptions): Mirror {
  const { client, logger, metrics } = o;

  async function upload(rel: string, path: string, size: number): Promise<void> {
    try {
      await client.put(objectName(rel), Bun.file(path));
    } catch (err) {
      metrics.inc("modproxy_s3_upload_errors");
      logger.debug(`modproxy: s3 upload ${client.key(objectName(rel))}: ${(err as Error).message}`);
      return;
    }
    metrics.inc("modproxy_s3_uploads");
    metrics.inc("modproxy_s3_bytes_up", size);
  }

  return {
    async get(rel) {
      if (!mirrored(rel)) return null;
      try {
        const obj = await client.get(objectName(rel));
        if (!obj) {
          metrics.inc("modproxy_s3_misses");
          return null;
        }
        metrics.inc("modproxy_s3_hits");
        // It came from the bucket: no need to upload it back.
        client.uploads.markSeen(client.key(objectName(rel)));
        return { ok: true, status: 200, body: toStream(obj.body, obj.cancel), size: obj.contentLength ?? null, from: `s3://${client.bucket}` };
      } catch (err) {
        metrics.inc("modproxy_s3_errors");
        logger.debug(`modproxy: ${(err as Error).message}; asking the upstream`);
        return null;
      }
    },
    put(rel, path) {
      if (o.readOnly || !mirrored(rel)) return;
      const size = Bun.file(path).size;
      client.uploads.enqueue({ key: client.key(objectName(rel)), size, run: () => upload(rel, path, size) });
    },
    async flush(timeoutMs) {
      return (await client.uploads.flush(timeoutMs)).left;
    },
  };
}

/** The client's body as a web stream (what the proxy's validation and clients read). */
function toStream(body: AsyncIterable<Uint8Array>, cancel: () => void): ReadableStream<Uint8Array> {
  const it = body[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      try {
        const { value, done } = await it.next();
        if (done) ctl.close();
        else ctl.enqueue(value);
      } catch (err) {
        ctl.error(err);
      }
    },
    cancel() {
      cancel();
    },
  });
}
