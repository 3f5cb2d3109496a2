// Reading a key's pack head (layout: store/packs.ts), for the reader (what
// to stream) and the writer (what the bucket already holds), and the heads
// this process last saw, so that a daemon's go commands that used nothing
// new do not ask the bucket again at close.

import type { S3Client } from "../s3/client.ts";
import { asRemoteError, type RemoteError } from "../s3/errors.ts";
import { BadHeadError, decodeHead, headObject, MAX_HEAD_BYTES, type PackHead } from "../store/packs.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";

export type HeadRead =
  | { kind: "found"; head: PackHead }
  /** No head for the key (404): nothing packed yet. */
  | { kind: "missing" }
  /** A head that does not decode or names another key: ignored, replaced by the next writer. */
  | { kind: "bad"; why: string }
  /** The bucket did not answer (timeout, 5xx, breaker open, auth). */
  | { kind: "failed"; err: RemoteError };

export interface HeadDeps {
  client: Pick<S3Client, "getBytes" | "key">;
  metrics: Metrics;
  logger: Logger;
}

/** One GET of a head, counted; never throws. */
export async function readHead(d: HeadDeps, key: string): Promise<HeadRead> {
  const name = headObject(key);
  d.metrics.inc("pack_head_gets");
  let body: Uint8Array | null;
  try {
    body = await d.client.getBytes(name, MAX_HEAD_BYTES);
  } catch (err) {
    const e = asRemoteError(err, `s3: get ${d.client.key(name)}`);
    d.metrics.inc(e.kind === "badobject" ? "pack_bad_heads" : "pack_head_errors");
    if (e.kind === "badobject") return { kind: "bad", why: e.message };
    return { kind: "failed", err: e };
  }
  if (!body) {
    d.metrics.inc("pack_heads_missing");
    return { kind: "missing" };
  }
  d.metrics.inc("bytes_down", body.length);
  try {
    const head = decodeHead(body, key);
    d.metrics.inc("pack_heads");
    return { kind: "found", head };
  } catch (err) {
    if (!(err instanceof BadHeadError)) throw err;
    d.metrics.inc("pack_bad_heads");
    d.logger.warn(`s3: pack head ${d.client.key(name)}: ${err.message}; ignored (the build goes on with single objects)`);
    return { kind: "bad", why: err.message };
  }
}

/** The last head read or written per key, for at most `limit` keys (oldest use goes first). */
export class KnownHeads {
  private readonly heads = new Map<string, PackHead>();

  constructor(private readonly limit = 64) {}

  get(key: string): PackHead | undefined {
    const h = this.heads.get(key);
    if (h) {
      this.heads.delete(key);
      this.heads.set(key, h);
    }
    return h;
  }

  set(key: string, head: PackHead): void {
    this.heads.delete(key);
    this.heads.set(key, head);
    while (this.heads.size > this.limit) this.heads.delete(this.heads.keys().next().value!);
  }

  forget(key: string): void {
    this.heads.delete(key);
  }
}
