// Landing one segment of a pack (packs.ts) as its bytes arrive: the body is
// cut into entries by the head's offsets, and each entry is written into
// the local store only if its SHA-256 and size match its metadata, exactly
// like a per-action object (s3-objects.ts). A bad entry is reported and
// skipped; the entries after it are still good or bad on their own, since
// every one is checked.
//
// Each entry is read whole (a head lists none over 64 MiB: packs.ts), then
// decompressed on the thread pool, verified here, and written through the
// thread pool (disk-async.ts), while the next entries are read: at most
// PIPELINE_ENTRIES entries and PIPELINE_BYTES of their bodies are in
// flight. The pack is never held whole, and this thread stays free to
// answer the go command between entries.

import { RemoteError } from "../s3/errors.ts";
import type { DiskStore, StoredOutput } from "./disk.ts";
import type { PackEntry, Segment } from "./packs.ts";
import { decompressBody, verifyOutput } from "./s3-objects.ts";

const PIPELINE_ENTRIES = 16;
const PIPELINE_BYTES = 32 << 20;
/**
 * Work at most this long before letting the event loop poll for I/O: body
 * chunks already buffered resolve as microtasks, so without it a whole
 * buffered segment is landed before the go command's next request (waiting
 * on stdin or a socket) is even read.
 */
const SLICE_MS = 2;

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
  const pipeline = new LandingPipeline();
  const what = `s3: pack ${seg.pack.name}`;
  let sliceStart = performance.now();
  try {
    for (const entry of seg.entries) {
      if (performance.now() - sliceStart > SLICE_MS) {
        await new Promise((r) => setImmediate(r));
        sliceStart = performance.now();
      }
      await cursor.skipTo(entry.offset, what);
      if (sink.isLocal(entry)) {
        await cursor.skip(entry.length, what);
        continue;
      }
      const body = await cursor.read(entry.length, what);
      await pipeline.add(body.length, () => landEntry(disk, entry, body, what).then((out) => sink.landed(entry, out), (err) => sink.failed(entry, err)));
    }
  } finally {
    // Ends the body's reader (its stall timer with it), whether or not all of it was read.
    cursor.close();
    await pipeline.drain();
  }
}

/** One entry's bytes decoded, verified and stored. */
async function landEntry(disk: DiskStore, entry: PackEntry, body: Uint8Array, what: string): Promise<StoredOutput> {
  const bad = (why: string): never => {
    throw new RemoteError("badobject", `${what}: entry ${entry.actionID}: ${why}`);
  };
  const out = entry.meta.encoding === "zstd" ? await decompressBody(body, entry.meta, bad) : body;
  verifyOutput(entry.meta, out, bad);
  return disk.putWhole(entry.actionID, entry.meta.outputID, out, entry.meta.timeNanos);
}

/** Entries being landed, bounded by count and bytes. */
class LandingPipeline {
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
