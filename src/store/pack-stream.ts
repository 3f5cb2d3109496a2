// Landing one segment of a pack (packs.ts) as its bytes arrive: the body is
// cut into frames by the head's offsets, each frame decompressed (on the
// thread pool) and cut into outputs, and each output is written into the
// local store only if its SHA-256 and size match its metadata, exactly like
// a per-action object (s3-objects.ts). A bad output is reported and skipped;
// the others are good or bad on their own, since every one is checked. A
// frame that does not decompress fails the outputs in it.
//
// Outputs are verified here and written through the thread pool
// (disk-async.ts) while the next frame is read: at most PIPELINE_ENTRIES
// outputs and PIPELINE_BYTES of them are being written at a time. The pack
// is never held whole (one frame at a time: a few MiB, at most 128 MiB for
// a frame a head may claim), and this thread stays free to answer the go
// command between outputs.

import { RemoteError } from "../s3/errors.ts";
import type { DiskStore, StoredOutput } from "./disk.ts";
import type { PackEntry, PackFrame, Segment } from "./packs.ts";
import { verifyOutput } from "./s3-objects.ts";

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
  let next = 0;
  try {
    for (const k of seg.frames) {
      if (performance.now() - sliceStart > SLICE_MS) {
        await new Promise((r) => setImmediate(r));
        sliceStart = performance.now();
      }
      const frame = seg.pack.frames[k]!;
      const entries: PackEntry[] = [];
      while (next < seg.entries.length && seg.entries[next]!.frame === k) entries.push(seg.entries[next++]!);
      await cursor.skipTo(frame.offset, what);
      const stored = await cursor.read(frame.length, what);
      const wanted = entries.filter((e) => !sink.isLocal(e));
      if (!wanted.length) continue;
      let raw: Uint8Array;
      try {
        raw = await decodeFrame(frame, stored, `${what}: frame ${k}`);
      } catch (err) {
        for (const e of wanted) sink.failed(e, err);
        continue;
      }
      for (const e of wanted) {
        const out = raw.subarray(e.offset, e.offset + e.meta.size);
        await pipeline.add(out.length, () => landOutput(disk, e, out, what).then((o) => sink.landed(e, o), (err) => sink.failed(e, err)));
      }
    }
  } finally {
    // Ends the body's reader (its stall timer with it), whether or not all of it was read.
    cursor.close();
    await pipeline.drain();
  }
}

/** A frame's raw bytes: decompressed (on the thread pool) and checked against the length its head says. */
async function decodeFrame(frame: PackFrame, stored: Uint8Array, what: string): Promise<Uint8Array> {
  if (!frame.zstd) return stored;
  let raw: Uint8Array;
  try {
    raw = await Bun.zstdDecompress(stored);
  } catch (err) {
    throw new RemoteError("badobject", `${what}: does not decompress: ${(err as Error)?.message ?? err}`, undefined, undefined, { cause: err });
  }
  if (raw.length !== frame.rawLength) throw new RemoteError("badobject", `${what}: decompresses to ${raw.length} bytes, its head says ${frame.rawLength}`);
  return raw;
}

/** One output's bytes verified and stored. */
async function landOutput(disk: DiskStore, entry: PackEntry, out: Uint8Array, what: string): Promise<StoredOutput> {
  verifyOutput(entry.meta, out, (why: string): never => {
    throw new RemoteError("badobject", `${what}: entry ${entry.actionID}: ${why}`);
  });
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
