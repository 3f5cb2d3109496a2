// Cached responses in the bucket: [prefix/]revproxy/<xx>/<key>, each
// object the entry file itself (entry-file.ts), so a remote hit is one GET
// streamed to a temp file next to the local entry, hashed on the way, and
// kept only if its length and SHA-256 match its head. Uploads go through
// the bucket's shared background queue (s3/upload-queue.ts) and read the
// local file as they send it; --read-only never uploads.
//
// Fail open: every bucket failure (timeout, 5xx, breaker open, an object
// that is not what it claims) is a miss here, counted in
// revproxy_remote_errors or revproxy_integrity_failures, and the request is
// fetched from the origin.

import { open, type FileHandle } from "node:fs/promises";
import type { S3Client } from "../s3/client.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { bodyOffset, decodeHead, HEAD_BYTES, type EntryHead } from "./entry-file.ts";
import { objectName } from "./keys.ts";
import type { LocalEntries, LocalHit } from "./local-entries.ts";

export class BucketEntries {
  private warned = false;

  constructor(
    private readonly client: S3Client,
    private readonly o: { readOnly: boolean; maxEntryBytes: number; metrics: Metrics; logger: Logger },
  ) {}

  /** Downloads the entry into the local store; null on a miss or any failure. */
  async land(key: string, local: LocalEntries): Promise<LocalHit | null> {
    const name = objectName(key);
    const tmp = local.tempFor(key);
    try {
      const obj = await this.client.get(name);
      if (!obj) return null;
      let fh: FileHandle | null = await open(tmp, "w", 0o644);
      try {
        const head = await copyVerified(obj.body, fh, this.o.maxEntryBytes, (n) => this.o.metrics.inc("revproxy_bytes_down", n));
        await fh.close();
        fh = null;
        if (head === null) {
          obj.cancel();
          this.o.metrics.inc("revproxy_integrity_failures");
          this.report(`revproxy: bucket object ${this.client.key(name)} is not a whole entry or its SHA-256 does not match; ignored`);
          return null;
        }
        await local.commit(tmp, key, head);
        this.client.uploads.markSeen(name);
      } finally {
        await fh?.close().catch(() => {});
      }
      return await local.lookup(key);
    } catch (err) {
      this.o.metrics.inc("revproxy_remote_errors");
      this.report(`revproxy: bucket: ${(err as Error)?.message ?? err}`);
      return null;
    } finally {
      local.discard(tmp);
    }
  }

  /** Queues the upload of a committed local entry (never blocks, never throws). */
  upload(key: string, path: string, size: number): void {
    if (this.o.readOnly) return;
    const name = objectName(key);
    const queued = this.client.uploads.enqueue({
      key: name,
      size,
      run: async () => {
        await this.client.put(name, Bun.file(path), { contentType: "application/octet-stream" });
        this.o.metrics.inc("revproxy_uploads");
        this.o.metrics.inc("revproxy_bytes_up", size);
      },
    });
    if (!queued) this.o.metrics.inc("revproxy_upload_skips");
  }

  private report(message: string): void {
    if (this.warned) return this.o.logger.debug(message);
    this.warned = true;
    this.o.logger.warn(`${message} (served from the origin; later bucket problems are counted in revproxy_remote_errors, -v shows them)`);
  }
}

/**
 * Copies an entry object into fh as it streams, hashing the body part.
 * Returns its head when it is whole and its SHA-256 matches, else null.
 */
async function copyVerified(body: AsyncIterable<Uint8Array>, fh: FileHandle, maxEntryBytes: number, received: (n: number) => void): Promise<EntryHead | null> {
  const hasher = new Bun.CryptoHasher("sha256");
  let head: EntryHead | null = null;
  let start = Infinity;
  let pos = 0;
  let first = new Uint8Array(0);
  for await (const chunk of body) {
    received(chunk.length);
    if (!head) {
      first = Buffer.concat([first, chunk]);
      if (first.length < HEAD_BYTES) continue;
      head = decodeHead(first);
      if (!head || (maxEntryBytes > 0 && head.size > maxEntryBytes)) return null;
      start = bodyOffset(head);
    }
    const data = first.length ? first : chunk;
    first = new Uint8Array(0);
    if (pos + data.length > start + head.size) return null;
    const bodyFrom = Math.max(0, start - pos);
    if (bodyFrom < data.length) hasher.update(data.subarray(bodyFrom));
    await writeAll(fh, data, pos);
    pos += data.length;
  }
  if (!head || pos !== start + head.size) return null;
  return hasher.digest("hex") === head.sha256 ? head : null;
}

async function writeAll(fh: FileHandle, data: Uint8Array, at: number): Promise<void> {
  for (let off = 0; off < data.length; ) {
    const { bytesWritten } = await fh.write(data, off, data.length - off, at + off);
    off += bytesWritten;
  }
}
