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
// The S3 tier of the build cache (src/store/s3.ts) addresses objects by
// action ID only, so this uses the AWS SDK directly, loaded on first use,
// with the same settings (endpoint, path style, region, credential chain).

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { S3Client } from "@aws-sdk/client-s3";
import type { S3Config } from "../../config/config.ts";
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

/** Per request when --s3-timeout is not set. */
const TIMEOUT_MS = 30_000;
const UPLOADS_AT_ONCE = 4;

export function createS3Mirror(cfg: S3Config, logger: Logger, metrics: Metrics): Mirror {
  const timeoutMs = (cfg as { timeoutMs?: number }).timeoutMs || TIMEOUT_MS;
  let client: Promise<{ c: S3Client; sdk: typeof import("@aws-sdk/client-s3") }> | null = null;
  const sdkClient = () =>
    (client ??= import("@aws-sdk/client-s3").then((sdk) => ({
      sdk,
      c: new sdk.S3Client({
        region: cfg.region ?? "us-east-1",
        ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
        forcePathStyle: cfg.pathStyle,
        followRegionRedirects: true,
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
      }),
    })));
  const key = (rel: string) => `${cfg.prefix ? `${cfg.prefix}/` : ""}mod/${rel}`;
  /** Files that came from the bucket: no need to upload them back. */
  const fromBucket = new Set<string>();
  const queue: { rel: string; path: string }[] = [];
  const queued = new Set<string>();
  let active = 0;
  let idle: (() => void)[] = [];

  function pump(): void {
    while (active < UPLOADS_AT_ONCE && queue.length) {
      const job = queue.shift()!;
      active++;
      upload(job.rel, job.path)
        .catch((err) => {
          metrics.inc("modproxy_s3_upload_errors");
          logger.warn(`modproxy: s3 upload ${key(job.rel)}: ${(err as Error).message}`);
        })
        .finally(() => {
          active--;
          queued.delete(job.rel);
          pump();
          if (active === 0 && queue.length === 0) {
            for (const f of idle.splice(0)) f();
          }
        });
    }
  }

  async function upload(rel: string, path: string): Promise<void> {
    const { c, sdk } = await sdkClient();
    const size = (await stat(path)).size;
    await c.send(
      new sdk.PutObjectCommand({ Bucket: cfg.bucket, Key: key(rel), Body: createReadStream(path), ContentLength: size }),
      { abortSignal: AbortSignal.timeout(Math.max(timeoutMs, size / 1000)) },
    );
    metrics.inc("modproxy_s3_uploads");
    metrics.inc("modproxy_s3_bytes_up", size);
  }

  return {
    async get(rel) {
      if (!mirrored(rel)) return null;
      try {
        const { c, sdk } = await sdkClient();
        // The deadline covers the answer, not the body (zips can be large).
        const ac = new AbortController();
        const timer = setTimeout(() => ac.abort(), timeoutMs);
        const res = await c.send(new sdk.GetObjectCommand({ Bucket: cfg.bucket, Key: key(rel) }), { abortSignal: ac.signal }).finally(() => clearTimeout(timer));
        if (!res.Body) return null;
        metrics.inc("modproxy_s3_hits");
        fromBucket.add(rel);
        if (fromBucket.size > 100_000) fromBucket.clear();
        return { ok: true, status: 200, body: res.Body.transformToWebStream() as ReadableStream<Uint8Array>, size: res.ContentLength ?? null, from: `s3://${cfg.bucket}` };
      } catch (err) {
        const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
        if (e.name === "NoSuchKey" || e.$metadata?.httpStatusCode === 404) {
          metrics.inc("modproxy_s3_misses");
          return null;
        }
        metrics.inc("modproxy_s3_errors");
        logger.warn(`modproxy: s3 get ${key(rel)}: ${(err as Error).message}; asking the upstream`);
        return null;
      }
    },
    put(rel, path) {
      if (cfg.readOnly || !mirrored(rel) || queued.has(rel)) return;
      if (fromBucket.delete(rel)) return;
      queued.add(rel);
      queue.push({ rel, path });
      pump();
    },
    flush(timeoutMs) {
      if (active === 0 && queue.length === 0) return Promise.resolve(0);
      return new Promise((resolve) => {
        const t = setTimeout(() => resolve(active + queue.length), timeoutMs);
        idle.push(() => {
          clearTimeout(t);
          resolve(0);
        });
      });
    },
  };
}
