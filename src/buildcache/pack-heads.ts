// Reading a key's pack head (layout: store/packs.ts), for the reader (what
// to stream) and the writer (what the bucket already holds), and the heads
// this machine last saw (in memory, and copies in the cache directory:
// store/head-copies.ts), so that a go command that used nothing new does
// not ask the bucket at all: a warm laptop build stays off the network.

import type { S3Client } from "../s3/client.ts";
import { asRemoteError, type RemoteError } from "../s3/errors.ts";
import { dropHeadCopy, headCopyTime, readHeadCopy, saveHeadCopy } from "../store/head-copies.ts";
import { BadHeadError, decodeHead, headObject, MAX_HEAD_BYTES, type PackHead } from "../store/packs.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";

export type HeadRead =
  /** bytes: the head as it is in the bucket (for KnownHeads' copy). */
  | { kind: "found"; head: PackHead; bytes: Uint8Array }
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
    return { kind: "found", head, bytes: body };
  } catch (err) {
    if (!(err instanceof BadHeadError)) throw err;
    d.metrics.inc("pack_bad_heads");
    d.logger.warn(`s3: pack head ${d.client.key(name)}: ${err.message}; ignored (the build goes on with single objects)`);
    return { kind: "bad", why: err.message };
  }
}

/** How long a head seen is trusted without asking the bucket again. */
export const KNOWN_HEAD_TTL_MS = 3600_000;

export interface KnownHeadsOptions {
  /** Where copies are kept (store/head-copies.ts), or none: memory only. */
  dir?: string;
  ttlMs?: number;
  /** Heads kept in memory (the least recently used goes first). */
  limit?: number;
  now?: () => number;
}

/**
 * The last head read or written per key, trusted for ttlMs after it was
 * seen. A copy in dir carries it to later processes (plugin mode: each go
 * command is one).
 */
export class KnownHeads {
  private readonly heads = new Map<string, { head: PackHead; seenMs: number }>();
  private readonly ttlMs: number;
  private readonly limit: number;
  private readonly now: () => number;

  constructor(private readonly o: KnownHeadsOptions = {}) {
    this.ttlMs = o.ttlMs ?? KNOWN_HEAD_TTL_MS;
    this.limit = o.limit ?? 64;
    this.now = o.now ?? Date.now;
  }

  /** Whether a head of key is known and fresh, without decoding a copy (one stat). */
  knows(key: string): boolean {
    const h = this.heads.get(key);
    if (h && this.fresh(h.seenMs)) return true;
    // Another process (plugin mode) may have seen it since.
    const t = this.o.dir ? headCopyTime(this.o.dir, key) : null;
    return t !== null && this.fresh(t);
  }

  get(key: string): PackHead | undefined {
    const h = this.heads.get(key);
    if (h && this.fresh(h.seenMs)) {
      this.remember(key, h.head, h.seenMs);
      return h.head;
    }
    this.heads.delete(key);
    return this.fromCopy(key);
  }

  /** A head just read or written; bytes as in the bucket, for the copy. */
  set(key: string, head: PackHead, bytes?: Uint8Array): void {
    this.remember(key, head, this.now());
    if (this.o.dir && bytes) saveHeadCopy(this.o.dir, key, bytes);
  }

  private fresh(seenMs: number): boolean {
    return this.now() - seenMs < this.ttlMs;
  }

  private remember(key: string, head: PackHead, seenMs: number): void {
    this.heads.delete(key);
    this.heads.set(key, { head, seenMs });
    while (this.heads.size > this.limit) this.heads.delete(this.heads.keys().next().value!);
  }

  private fromCopy(key: string): PackHead | undefined {
    const dir = this.o.dir;
    const t = dir ? headCopyTime(dir, key) : null;
    if (!dir || t === null || !this.fresh(t)) return undefined;
    const bytes = readHeadCopy(dir, key);
    try {
      const head = bytes ? decodeHead(bytes, key) : undefined;
      if (head) this.remember(key, head, t);
      return head;
    } catch (err) {
      if (!(err instanceof BadHeadError)) throw err;
      dropHeadCopy(dir, key);
      return undefined;
    }
  }
}
