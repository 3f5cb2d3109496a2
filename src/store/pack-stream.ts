// Landing one segment of a pack (packs.ts) as its bytes arrive: the body is
// cut into frames by the head's offsets, and each frame with the entries of
// it that are not on the local disk yet goes to the frame lander
// (pack-lander.ts: a landing thread decompresses it, checks every output
// against its output ID and size, and writes the good ones; pack-frame.ts).
// Each entry is reported to the sink as soon as it has landed or failed.
//
// While the lander works on frames the next ones are read: at most
// WINDOW_FRAMES frames and WINDOW_BYTES of them (raw) are with the lander at
// a time, per window (one per reader, across its segments). The pack is never held whole (a few frames of a few MiB; at most
// 128 MiB for one frame a head may claim, stored in no more than zstd's
// worst case for that: decodeHead refuses a head claiming more, packs.ts).

import { RemoteError } from "../s3/errors.ts";
import type { DiskStore, StoredOutput } from "./disk.ts";
import type { EntryResult, FrameJob } from "./pack-frame.ts";
import { frameLander } from "./pack-lander.ts";
import type { PackEntry, Segment } from "./packs.ts";

const WINDOW_FRAMES = 4;
const WINDOW_BYTES = 32 << 20;

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

export interface LandOptions {
  /**
   * Frames with the lander, shared by the segments of one reader: then a
   * segment resolves as soon as all of its frames are with the lander (its
   * last entries are reported later), so the next segment's frames keep
   * the landing threads busy meanwhile. The caller drains it when it needs
   * everything landed.
   */
  window?: FrameWindow;
}

/**
 * Lands every entry of a segment. Resolves when each entry was reported to
 * the sink once (with a shared window: when each is with the lander);
 * throws a RemoteError when the body fails or ends early, after reporting
 * the entries that were complete by then (the caller fails the rest).
 */
export async function landSegment(disk: DiskStore, seg: Segment, src: SegmentBody, sink: SegmentSink, received?: (n: number) => void, o: LandOptions = {}): Promise<void> {
  const cursor = new ByteCursor(src.body, src.firstByte, received);
  const lander = frameLander();
  const window = o.window ?? new FrameWindow();
  const what = `s3: pack ${seg.pack.name}`;
  const mine: Promise<void>[] = [];
  let whole = false;
  let next = 0;
  try {
    for (const k of seg.frames) {
      const frame = seg.pack.frames[k]!;
      const entries: PackEntry[] = [];
      while (next < seg.entries.length && seg.entries[next]!.frame === k) entries.push(seg.entries[next++]!);
      await cursor.skipTo(frame.offset, what);
      const stored = await cursor.read(frame.length, what);
      const wanted = entries.filter((e) => !sink.isLocal(e));
      if (!wanted.length) continue;
      const job: FrameJob = {
        stored,
        zstd: frame.zstd,
        rawLength: frame.rawLength,
        what: `${what}: frame ${k}`,
        entries: wanted.map((e) => ({ actionID: e.actionID, offset: e.offset, outputID: e.meta.outputID, size: e.meta.size, timeNanos: e.meta.timeNanos })),
      };
      mine.push((await window.add(frame.rawLength, () => lander.land(disk, job, (i, r) => report(sink, wanted[i]!, r)))).landed);
    }
    whole = true;
  } finally {
    // Ends the body's reader (its stall timer with it), whether or not all of it was read.
    cursor.close();
    // Alone, or cut short: the frames read whole land before this returns or throws (the caller fails only the rest).
    if (!o.window || !whole) await Promise.all(mine);
  }
}

function report(sink: SegmentSink, entry: PackEntry, r: EntryResult): void {
  if (r.ok) return sink.landed(entry, r.out);
  sink.failed(entry, r.bad ? new RemoteError("badobject", r.message) : Object.assign(new Error(r.message), { code: r.code }));
}

/** Frames with the lander, bounded by count and raw bytes. */
export class FrameWindow {
  private readonly running = new Set<Promise<void>>();
  private bytes = 0;

  /** Waits for room, then starts the job; `landed` settles when it is done. */
  async add(size: number, job: () => Promise<void>): Promise<{ landed: Promise<void> }> {
    while (this.running.size >= WINDOW_FRAMES || (this.running.size > 0 && this.bytes + size > WINDOW_BYTES)) {
      await Promise.race(this.running);
    }
    this.bytes += size;
    const p: Promise<void> = job().finally(() => {
      this.running.delete(p);
      this.bytes -= size;
    });
    this.running.add(p);
    return { landed: p };
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
