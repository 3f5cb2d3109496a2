// The S3 side of the shared tier: one object per action, fetched with one GET.
//
// Object layout (the final one; DESIGN.md section 3):
//
//   key   [<prefix>/]<xx>/<actionhex>        <xx> = first byte of the action ID in hex
//   body  the output bytes, zstd-compressed when that saves space
//   user metadata (x-amz-meta-*):
//     gostash-output    output ID, 64 lowercase hex (SHA-256 of the output)
//     gostash-size      output size in bytes (uncompressed), decimal
//     gostash-time      time of the original put, Unix nanoseconds, decimal
//     gostash-encoding  "identity" or "zstd"
//
// A remote hit is therefore a single round trip: metadata arrives in the
// headers and the body follows. The reader (tiered.ts) hashes the output as
// it lands on disk and accepts it only if its SHA-256 and size match the
// metadata; anything else is a miss. Objects are written with one
// PutObject, which S3-compatible stores make visible atomically, so an
// interrupted upload never leaves a half object behind.
//
// The AWS SDK is imported lazily, after the capability line has gone out,
// and loading it overlaps with the first local hits. Credentials come from
// the SDK's default chain (environment, shared config and SSO profiles, web
// identity, ECS/IMDS). Checksums are computed and validated only when the
// operation requires them: the SDK's default "flexible checksums" break
// several S3-compatible stores (R2, MinIO, older Ceph), and integrity is
// checked end to end by the output ID anyway. Without --region the client
// starts in us-east-1 and follows S3's region redirects, so nothing waits
// for a region lookup.

import type { S3Client } from "@aws-sdk/client-s3";
import type { S3Config } from "../config/config.ts";

export type Encoding = "identity" | "zstd";

export interface ObjectMeta {
  outputID: string;
  size: number;
  timeNanos: bigint;
  encoding: Encoding;
}

export interface RemoteObject {
  meta: ObjectMeta;
  /** Bytes in the body as sent (compressed size for zstd), if known. */
  contentLength: number | undefined;
  /** The body; throws RemoteError on a stall, a cut or an abort. */
  body: AsyncIterable<Uint8Array>;
  /** Stop reading and release the connection. */
  cancel(): void;
}

export type RemoteErrorKind = "timeout" | "network" | "http" | "auth" | "badobject";

/** A failure of the backend (or a malformed object), never a plain miss. */
export class RemoteError extends Error {
  constructor(
    readonly kind: RemoteErrorKind,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "RemoteError";
  }
  /** Does this say the backend is unwell (counts against the breaker)? */
  get backendFault(): boolean {
    return this.kind !== "badobject";
  }
}

export interface S3Store {
  readonly bucket: string;
  key(actionID: string): string;
  /** The object for actionID, or null if there is none (404). */
  get(actionID: string): Promise<RemoteObject | null>;
  put(actionID: string, meta: ObjectMeta, body: Uint8Array): Promise<void>;
  close(): void;
}

export interface S3StoreOptions {
  /** Give up on a request whose answer (or next body chunk) takes longer. */
  timeoutMs: number;
  /** Sockets kept open to the endpoint. */
  maxSockets: number;
}

const META_OUTPUT = "gostash-output";
const META_SIZE = "gostash-size";
const META_TIME = "gostash-time";
const META_ENCODING = "gostash-encoding";

export function objectKey(prefix: string, actionID: string): string {
  const k = `${actionID.slice(0, 2)}/${actionID}`;
  return prefix ? `${prefix}/${k}` : k;
}

export function encodeMeta(m: ObjectMeta): Record<string, string> {
  return {
    [META_OUTPUT]: m.outputID,
    [META_SIZE]: String(m.size),
    [META_TIME]: String(m.timeNanos),
    [META_ENCODING]: m.encoding,
  };
}

/** Parses object metadata; null if it is missing or malformed. */
export function decodeMeta(md: Record<string, string> | undefined): ObjectMeta | null {
  if (!md) return null;
  const outputID = md[META_OUTPUT];
  const size = md[META_SIZE];
  const time = md[META_TIME];
  const encoding = md[META_ENCODING] ?? "identity";
  if (!outputID || !/^[0-9a-f]{64}$/.test(outputID)) return null;
  if (!size || !/^\d{1,15}$/.test(size)) return null;
  if (!time || !/^\d{1,20}$/.test(time)) return null;
  if (encoding !== "identity" && encoding !== "zstd") return null;
  return { outputID, size: Number(size), timeNanos: BigInt(time), encoding };
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** Maps whatever the SDK threw to a RemoteError. */
export function classify(err: unknown, what: string): RemoteError {
  if (err instanceof RemoteError) return err;
  const e = err as { name?: string; message?: string; code?: string };
  const status = statusOf(err);
  const msg = `${what}: ${e?.name ?? "Error"}${e?.message ? `: ${e.message}` : ""}`;
  if (e?.name === "TimeoutError" || e?.name === "AbortError" || e?.code === "ETIMEDOUT") return new RemoteError("timeout", msg, status);
  if (status === 401 || status === 403) return new RemoteError("auth", msg, status);
  if (status !== undefined && status > 0) return new RemoteError("http", msg, status);
  return new RemoteError("network", msg, status);
}

function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string })?.name;
  return statusOf(err) === 404 || name === "NoSuchKey" || name === "NotFound";
}

type Sdk = typeof import("@aws-sdk/client-s3");

export function createS3Store(cfg: S3Config, o: S3StoreOptions): S3Store {
  let sdk: Sdk | null = null;
  let client: S3Client | null = null;
  let closed = false;
  // Start loading the SDK now; the first remote request waits for it.
  const ready: Promise<void> = import("@aws-sdk/client-s3").then((m) => {
    sdk = m;
    if (closed) return;
    client = new m.S3Client({
      region: cfg.region ?? "us-east-1",
      ...(cfg.region ? {} : { followRegionRedirects: true }),
      ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
      forcePathStyle: cfg.pathStyle,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      // Gets fail open (the breaker decides about retrying later); uploads
      // retry on their own schedule in the upload queue.
      maxAttempts: 1,
      requestHandler: {
        connectionTimeout: o.timeoutMs,
        requestTimeout: o.timeoutMs,
        httpAgent: { keepAlive: true, maxSockets: o.maxSockets },
        httpsAgent: { keepAlive: true, maxSockets: o.maxSockets },
      },
    });
  });
  // An unhandled rejection here would be fatal; requests report it instead.
  ready.catch(() => {});

  async function c(): Promise<{ client: S3Client; sdk: Sdk }> {
    try {
      await ready;
    } catch (err) {
      throw new RemoteError("network", `s3: loading the AWS SDK failed: ${(err as Error)?.message ?? err}`);
    }
    if (closed || !client || !sdk) throw new RemoteError("network", "s3: store closed");
    return { client, sdk };
  }

  /** Runs send() with a deadline that also covers credential resolution. */
  async function withDeadline<T>(what: string, ms: number, ctl: AbortController, send: () => Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        ctl.abort();
        reject(new RemoteError("timeout", `${what}: no answer within ${ms}ms`));
      }, ms);
    });
    try {
      return await Promise.race([send(), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    bucket: cfg.bucket,
    key: (a) => objectKey(cfg.prefix, a),

    async get(actionID) {
      const { client, sdk } = await c();
      const key = objectKey(cfg.prefix, actionID);
      const ctl = new AbortController();
      let res: { Body?: unknown; Metadata?: Record<string, string>; ContentLength?: number };
      try {
        res = await withDeadline(`s3: get ${key}`, o.timeoutMs, ctl, () =>
          client.send(new sdk.GetObjectCommand({ Bucket: cfg.bucket, Key: key }), { abortSignal: ctl.signal }),
        );
      } catch (err) {
        if (isNotFound(err)) return null;
        throw classify(err, `s3: get ${key}`);
      }
      const stream = res.Body as (AsyncIterable<Uint8Array> & { destroy?: () => void }) | undefined;
      const cancel = () => {
        ctl.abort();
        try {
          stream?.destroy?.();
        } catch {}
      };
      const meta = decodeMeta(res.Metadata);
      if (!meta || !stream) {
        cancel();
        throw new RemoteError("badobject", `s3: get ${key}: object has no valid gostash metadata`);
      }
      async function* body(): AsyncGenerator<Uint8Array> {
        // An idle timer: a body that stalls longer than timeoutMs is cut.
        let stalled = false;
        let timer = setTimeout(() => ((stalled = true), cancel()), o.timeoutMs);
        try {
          for await (const chunk of stream!) {
            clearTimeout(timer);
            timer = setTimeout(() => ((stalled = true), cancel()), o.timeoutMs);
            yield chunk as Uint8Array;
          }
        } catch (err) {
          if (stalled) throw new RemoteError("timeout", `s3: get ${key}: body stalled for ${o.timeoutMs}ms`);
          throw classify(err, `s3: get ${key}: reading body`);
        } finally {
          clearTimeout(timer);
        }
        if (stalled) throw new RemoteError("timeout", `s3: get ${key}: body stalled for ${o.timeoutMs}ms`);
      }
      return { meta, contentLength: res.ContentLength, body: body(), cancel };
    },

    async put(actionID, meta, bytes) {
      const { client, sdk } = await c();
      const key = objectKey(cfg.prefix, actionID);
      const ctl = new AbortController();
      // Large bodies get time to travel: at least 1 MiB/s on top of the timeout.
      const ms = o.timeoutMs + Math.ceil(bytes.length / 1024);
      try {
        await withDeadline(`s3: put ${key}`, ms, ctl, () =>
          client.send(
            new sdk.PutObjectCommand({
              Bucket: cfg.bucket,
              Key: key,
              Body: bytes,
              ContentLength: bytes.length,
              ContentType: "application/octet-stream",
              Metadata: encodeMeta(meta),
            }),
            { abortSignal: ctl.signal },
          ),
        );
      } catch (err) {
        throw classify(err, `s3: put ${key}`);
      }
    },

    close() {
      closed = true;
      (client as S3Client | null)?.destroy();
      client = null;
    },
  };
}
