// Landing one segment of a pack (packs.ts) as its bytes arrive: the body is
// cut into entries by the head's offsets, and each entry is written into
// the local store only if its SHA-256 and size match its metadata, exactly
// like a per-action object (s3-objects.ts). A bad entry is reported and
// skipped; the entries after it are still good or bad on their own, since
// every one is checked.
//
// Memory: the pack is never held whole. An identity entry streams straight
// to its file; a zstd entry is buffered (at most MAX_COMPRESSED_BODY; packs
// hold no larger outputs) and decompressed, and while it is, the next
// entries are read: at most PIPELINE_ENTRIES entries and PIPELINE_BYTES of
// compressed bytes wait for decompression at a time. That keeps the thread
// pool decompressing while this thread hashes and writes.

import { RemoteError } from "../s3/errors.ts";
import type { DiskStore, StoredOutput } from "./disk.ts";
import type { PackEntry, Segment } from "./packs.ts";
import { decompressBody, landBytes } from "./s3-objects.ts";

const PIPELINE_ENTRIES = 8;
const PIPELINE_BYTES = 16 << 20;

/** Where the entries of a segment go, one call per entry. */
export interface SegmentSink {
  /** The entry is on the local disk already: its bytes are skipped. */
  isLocal(entry: PackEntry): boolean;
  landed(entry: PackEntry, out: StoredOutput): void;
  /** The entry was not landed: bad bytes (RemoteError "badobject") or a local disk error. */
  failed(entry: PackEntry, err: unknown): void;
}

export interface SegmentBody {
  body: AsyncIterable<Uint8Array>;
  /** The pack offset of the body's first byte (0 when the server sent the whole pack). */
  firstByte: number;
}

/**
 * Lands every entry of a segment. Resolves when each entry was reported to
 * the sink once; throws a RemoteError when the body fails or ends early,
 * after reporting the entries that were complete by then (the caller fails
 * the rest).
 */
export async function landSegment(disk: DiskStore, seg: Segment, src: SegmentBody, sink: SegmentSink, received?: (n: number) => void): Promise<void> {
  const cursor = new ByteCursor(src.body, src.firstByte, received);
  const pipeline = new DecodePipeline();
  const what = `s3: pack ${seg.pack.name}`;
  try {
    for (const entry of seg.entries) {
      await cursor.skipTo(entry.offset, what);
      if (sink.isLocal(entry)) {
        await cursor.skip(entry.length, what);
        continue;
      }
      const bad = (why: string): never => {
        throw new RemoteError("badobject", `${what}: entry ${entry.actionID}: ${why}`);
      };
      if (entry.meta.encoding === "identity") {
        await landStreamed(disk, entry, cursor, bad, what).then((out) => sink.landed(entry, out), (err) => rethrowCut(err, () => sink.failed(entry, err)));
        continue;
      }
      const body = await cursor.read(entry.length, what);
      await pipeline.add(body.length, async () => {
        try {
          sink.landed(entry, landBytes(disk, entry.actionID, entry.meta, await decompressBody(body, entry.meta, bad), bad));
        } catch (err) {
          sink.failed(entry, err);
        }
      });
    }
  } finally {
    // Ends the body's reader (its stall timer with it), whether or not all of it was read.
    cursor.close();
    await pipeline.drain();
  }
}

/** A failure of the body itself ends the segment; anything else is the entry's own. */
function rethrowCut(err: unknown, entryFailed: () => void): void {
  if (err instanceof BodyCut) throw err.cause;
  entryFailed();
}

/** An identity entry written to its file chunk by chunk, hashed on the way. */
async function landStreamed(disk: DiskStore, entry: PackEntry, cursor: ByteCursor, bad: (why: string) => never, what: string): Promise<StoredOutput> {
  const hasher = new Bun.CryptoHasher("sha256");
  const w = disk.put(entry.actionID, entry.meta.outputID, entry.meta.size);
  try {
    let left = entry.length;
    while (left > 0) {
      let chunk: Uint8Array;
      try {
        chunk = await cursor.next(left, what);
      } catch (err) {
        throw new BodyCut(err);
      }
      left -= chunk.length;
      hasher.update(chunk);
      w.write(chunk);
    }
    const sum = hasher.digest("hex");
    if (sum !== entry.meta.outputID) bad(`SHA-256 of the body is ${sum}, not the output ID ${entry.meta.outputID}`);
    return w.commit(entry.meta.timeNanos);
  } catch (err) {
    w.abort();
    throw err;
  }
}

/** The stream failed while an entry was being written: not that entry's fault. */
class BodyCut extends Error {
  constructor(override readonly cause: unknown) {
    super("pack body cut");
  }
}

/** Decompressions in flight, bounded by count and bytes. */
class DecodePipeline {
  private readonly running = new Set<Promise<void>>();
  private bytes = 0;

  async add(size: number, job: () => Promise<void>): Promise<void> {
    while (this.running.size >= PIPELINE_ENTRIES || (this.running.size > 0 && this.bytes + size > PIPELINE_BYTES)) {
      await Promise.race(this.running);
    }
    this.bytes += size;
    const p: Promise<void> = job().finally(() => {
      this.running.delete(p);
      this.bytes -= size;
    });
    this.running.add(p);
  }

  async drain(): Promise<void> {
    while (this.running.size) await Promise.race(this.running);
  }
}

/** Reads a byte stream by position: exact reads, skips, and chunks up to a length. */
export class ByteCursor {
  private readonly it: AsyncIterator<Uint8Array>;
  private rest: Uint8Array | null = null;

  constructor(
    body: AsyncIterable<Uint8Array>,
    /** The position of the next byte. */
    public pos: number,
    private readonly received?: (n: number) => void,
  ) {
    this.it = body[Symbol.asyncIterator]();
  }

  /** The next bytes, at most max of them; throws at the end of the body. */
  async next(max: number, what: string): Promise<Uint8Array> {
    let chunk = this.rest;
    this.rest = null;
    if (!chunk || chunk.length === 0) {
      const r = await this.it.next();
      if (r.done) throw new RemoteError("badobject", `${what}: body ended at byte ${this.pos}, before the entries its head lists`);
      chunk = r.value;
      this.received?.(chunk.length);
    }
    if (chunk.length > max) {
      this.rest = chunk.subarray(max);
      chunk = chunk.subarray(0, max);
    }
    this.pos += chunk.length;
    return chunk;
  }

  /** Stops reading: the body's iterator is finished (and its resources released). */
  close(): void {
    void this.it.return?.().catch(() => {});
  }

  async skip(n: number, what: string): Promise<void> {
    while (n > 0) n -= (await this.next(n, what)).length;
  }

  async skipTo(offset: number, what: string): Promise<void> {
    if (offset < this.pos) throw new RemoteError("badobject", `${what}: entry at ${offset} is behind the read position ${this.pos}`);
    await this.skip(offset - this.pos, what);
  }

  /** Exactly n bytes, in one buffer of their own. */
  async read(n: number, what: string): Promise<Uint8Array> {
    const first = await (n > 0 ? this.next(n, what) : Promise.resolve(new Uint8Array(0)));
    if (first.length === n) return first.slice();
    const out = new Uint8Array(n);
    out.set(first);
    let off = first.length;
    while (off < n) {
      const c = await this.next(n - off, what);
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}
