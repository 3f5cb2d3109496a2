// The cost book: how long each cached action took to compute, kept next to
// the local cache so every later hit can say how much time it saved
// (buildcache/costs.ts measures and reads it; the bucket carries the same
// figure in each object's metadata, s3-objects.ts).
//
// Layout, in the cache directory but outside Go's <xx> directories, so Go's
// trim and `go clean -cache` (which remove only those) never touch it:
//
//   <dir>/gostash-costs/<h>.log      h = first hex digit of the action ID (16 shards)
//     a sequence of 40-byte records (store/cost-record.ts), appended:
//       bytes  0..31  action ID (binary)
//       bytes 32..35  cost in milliseconds, uint32 little-endian
//       bytes 36..39  CRC-32 of bytes 0..35, uint32 little-endian
//     a later record for the same action replaces an earlier one.
//   <dir>/gostash-costs/<h>.index    the costs of the log's first bytes,
//     sorted (store/cost-index.ts): lookups there are a binary search; only
//     the records after them (the tail) are read into a map. Rebuilt by the
//     writer when the tail grows past maxTailBytes, and after a reader found
//     a long tail (at its flush: in plugin mode after `go` has its answers).
//     Optional: without it, or when it no longer matches the log, the whole
//     log is the tail, as it was before indexes.
//
// Batching: records are appended in batches, one write() per shard, at
// most FLUSH_MS after the first of them, at FLUSH_RECORDS, on flush() and
// when the process exits. A fresh machine lands 1,419 entries of `go build
// std` from packs, each with its cost: one open, write, fstat and close per
// record was 5,700 system calls on the thread that answers the go command.
// Until written, a record is known to this process only (get() sees it);
// a process killed before the flush loses its batch, which only leaves
// those hits' savings uncounted.
//
// Crash safety: each batch is one write() to a file opened for appending,
// so concurrent writers (several plugin processes, a daemon) never interleave
// inside a record. A record cut short by a crash or a full disk fails its
// CRC; the reader then slides forward byte by byte until records check out
// again, so one torn record never hides the ones after it.
//
// Bounds: when a shard grows over maxShardBytes it is compacted: the newest
// record of each action is kept, newest first, up to half the limit, and
// written to a temp file renamed over the shard. A record another process
// appends during that window may be lost; so may the costs of entries Go's
// trim removed long ago: a lost cost only makes a later hit's saving
// uncounted (understated), never wrong data for a build.
//
// Every I/O error is swallowed (reported through onError): costs are an
// estimate and must never fail or slow a build.

import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { bufferView, buildIndex, indexedLength, keyOfHex, openIndex, type CostIndex, type LogView } from "./cost-index.ts";
import { decodeRecords, encodeRecord, isRecordAt, RECORD_SIZE, recordOffsets } from "./cost-record.ts";

export { decodeRecords, encodeRecord, RECORD_SIZE } from "./cost-record.ts";

export const COSTS_DIR = "gostash-costs";
/** 16 shards of this much: about 100,000 actions in 4 MiB. */
export const DEFAULT_MAX_SHARD_BYTES = 256 << 10;
/** A shard's records past its index are indexed again beyond this share of the shard's limit (16 KiB: 409 records). */
const TAIL_SHARE = 16;
/** Costs recorded by this process kept in memory (a daemon's, beyond what it loaded). */
const MAX_OWN_COSTS = 200_000;
/** A batch is written this long after its first record... */
const FLUSH_MS = 500;
/** ...or once it holds this many (20 KiB). */
const FLUSH_RECORDS = 512;

/** Books holding records not written yet: the process's exit writes them. */
const unflushed = new Set<CostBook>();
let exitHooked = false;

function flushAtExit(book: CostBook): void {
  unflushed.add(book);
  if (exitHooked) return;
  exitHooked = true;
  process.on("exit", () => {
    for (const b of unflushed) b.flush();
  });
}

export interface CostBook {
  /** The recorded cost of an action in ms, if any. */
  get(actionID: string): number | undefined;
  /** Records (or replaces) an action's cost in ms; written to disk with the next batch. */
  record(actionID: string, ms: number): void;
  /** Writes the records not written yet. */
  flush(): void;
}

export interface CostBookOptions {
  maxShardBytes?: number;
  /** Records past a shard's index beyond this many bytes get it indexed again (default: a 16th of maxShardBytes). */
  maxTailBytes?: number;
  onError?: (err: Error) => void;
}

export function openCostBook(cacheDir: string, o: CostBookOptions = {}): CostBook {
  return new ShardedCostLog(join(cacheDir, COSTS_DIR), o);
}

/**
 * One shard in memory: its index (cost-index.ts) if it has one that still
 * describes the log, and the records after what it covers (the tail, all
 * of the log without one), with where the newest record of each action
 * starts, keyed by the first 6 bytes of the ID (a number, much cheaper to
 * build than 64-character strings; the full ID and the CRC are checked on
 * lookup, so a key shared by two actions only loses the older one's cost).
 */
export class CostShard {
  private readonly tailAt = new Map<number, number>();

  /** Reads what it needs of the log in view: with a good index, only its samples and the tail. */
  static open(view: LogView, idx: Uint8Array | null): CostShard {
    const index = idx ? openIndex(idx, view) : null;
    return new CostShard(view.read(index?.covers ?? 0, view.size), index, view.size);
  }

  private constructor(
    private readonly tail: Buffer,
    private readonly index: CostIndex | null,
    private readonly size: number,
  ) {
    if (tail.length % RECORD_SIZE === 0) {
      for (let o = 0; o < tail.length; o += RECORD_SIZE) this.tailAt.set(tail.readUIntBE(o, 6), o);
    } else {
      // Torn somewhere (a crash mid-append): only the records that check out.
      for (const o of recordOffsets(tail)) this.tailAt.set(tail.readUIntBE(o, 6), o);
    }
  }

  /** Bytes of the log its index does not cover. */
  get tailBytes(): number {
    return this.tail.length;
  }

  get empty(): boolean {
    return this.size === 0;
  }

  /** The cost of an action (64 lowercase hex), if the shard has one. */
  get(actionID: string): number | undefined {
    // The tail is newer than anything the index covers.
    if (this.tailAt.size > 0) {
      const o = this.tailAt.get(parseInt(actionID.slice(0, 12), 16));
      if (o !== undefined && this.tail.toString("hex", o, o + 32) === actionID && isRecordAt(this.tail, o)) return this.tail.readUInt32LE(o + 32);
    }
    if (!this.index) return undefined;
    const [hi, lo] = keyOfHex(actionID);
    return this.index.cost(hi, lo);
  }
}

class ShardedCostLog implements CostBook {
  /** Shard (first hex digit) -> what was on disk when first asked. */
  private readonly loaded = new Map<string, CostShard>();
  /** Shards read with a long tail: indexed at the next flush. */
  private readonly toIndex = new Set<string>();
  /** Costs this process recorded (newer than anything loaded). */
  private readonly mine = new Map<string, number>();
  private readonly maxShardBytes: number;
  private readonly maxTailBytes: number;
  private madeDir = false;
  /** Shard -> records not written yet, in the order recorded. */
  private readonly batch = new Map<string, Buffer[]>();
  private batched = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly dir: string,
    private readonly o: CostBookOptions,
  ) {
    this.maxShardBytes = Math.max(RECORD_SIZE * 4, o.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES);
    this.maxTailBytes = Math.max(RECORD_SIZE * 4, o.maxTailBytes ?? Math.floor(this.maxShardBytes / TAIL_SHARE));
  }

  get(actionID: string): number | undefined {
    if (actionID.length !== 64) return undefined;
    const own = this.mine.get(actionID);
    if (own !== undefined) return own;
    const h = actionID[0]!;
    let shard = this.loaded.get(h);
    if (!shard) this.loaded.set(h, (shard = this.load(h)));
    return shard.empty ? undefined : shard.get(actionID);
  }

  record(actionID: string, ms: number): void {
    if (!/^[0-9a-f]{64}$/.test(actionID) || !Number.isFinite(ms)) return;
    const h = actionID[0]!;
    const rec = encodeRecord(actionID, ms);
    this.mine.set(actionID, rec.readUInt32LE(32));
    if (this.mine.size > MAX_OWN_COSTS) this.mine.delete(this.mine.keys().next().value!);
    let recs = this.batch.get(h);
    if (!recs) this.batch.set(h, (recs = []));
    recs.push(rec);
    if (++this.batched >= FLUSH_RECORDS) return this.flush();
    if (this.timer) return;
    this.timer = setTimeout(() => this.flush(), FLUSH_MS);
    this.timer.unref?.();
    flushAtExit(this);
  }

  /**
   * One append per shard, with the file opened and closed around it: a
   * descriptor kept open would go on writing into a shard another process
   * has since compacted (renamed over), and those records would be lost.
   * Then each shard whose tail has grown too long is indexed again.
   */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    unflushed.delete(this);
    const batch = [...this.batch];
    this.batch.clear();
    this.batched = 0;
    for (const [h, recs] of batch) {
      try {
        const size = this.append(h, recs.length === 1 ? recs[0]! : Buffer.concat(recs));
        if (size > this.maxShardBytes) this.compact(h);
        else if (size - this.indexedOnDisk(h) > this.maxTailBytes) this.toIndex.add(h);
      } catch (err) {
        this.o.onError?.(err as Error);
      }
    }
    for (const h of this.toIndex) {
      try {
        this.reindexFromDisk(h);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.o.onError?.(err as Error);
      }
    }
    this.toIndex.clear();
  }

  private path(h: string): string {
    return join(this.dir, `${h}.log`);
  }

  private indexPath(h: string): string {
    return join(this.dir, `${h}.index`);
  }

  private load(h: string): CostShard {
    let fd: number;
    try {
      fd = openSync(this.path(h), "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.o.onError?.(err as Error);
      return CostShard.open(bufferView(Buffer.alloc(0)), null);
    }
    let shard: CostShard;
    try {
      shard = CostShard.open(fileView(fd), this.readIndex(h));
    } catch (err) {
      this.o.onError?.(err as Error);
      return CostShard.open(bufferView(Buffer.alloc(0)), null);
    } finally {
      closeSync(fd);
    }
    if (shard.tailBytes > this.maxTailBytes) {
      // Index it once the go command has its answers (plugin mode flushes at exit).
      this.toIndex.add(h);
      flushAtExit(this);
    }
    return shard;
  }

  private readIndex(h: string): Buffer | null {
    try {
      return readFileSync(this.indexPath(h));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.o.onError?.(err as Error);
      return null;
    }
  }

  /** How much of the log the index on disk says it covers (0 without one): read from its header alone. */
  private indexedOnDisk(h: string): number {
    let fd: number;
    try {
      fd = openSync(this.indexPath(h), "r");
    } catch {
      return 0;
    }
    try {
      const head = Buffer.alloc(8);
      return indexedLength(head.subarray(0, readSync(fd, head, 0, 8, 0)));
    } finally {
      closeSync(fd);
    }
  }

  /** Writes the index of log, the bytes of the file with inode ino: temp file + rename. The first index's file goes. */
  private reindex(h: string, log: Buffer, ino: bigint): void {
    const tmp = `${this.indexPath(h)}.${process.pid}.tmp`;
    writeFileSync(tmp, buildIndex(log, ino));
    renameSync(tmp, this.indexPath(h));
    rmSync(join(this.dir, `${h}.idx`), { force: true });
  }

  /** Indexes the shard as it is on disk now. */
  private reindexFromDisk(h: string): void {
    const fd = openSync(this.path(h), "r");
    try {
      const { ino, size } = fstatSync(fd, { bigint: true });
      this.reindex(h, readRange(fd, 0, Number(size)), ino);
    } finally {
      closeSync(fd);
    }
  }

  /** Appends whole records in one write; returns the shard's size after it. */
  private append(h: string, rec: Buffer): number {
    if (!this.madeDir) {
      mkdirSync(this.dir, { recursive: true });
      this.madeDir = true;
    }
    const fd = openSync(this.path(h), "a");
    try {
      writeSync(fd, rec);
      return fstatSync(fd).size;
    } finally {
      closeSync(fd);
    }
  }

  /** Keeps the newest record of each action, newest first, up to half the limit; temp file + rename. */
  private compact(h: string): void {
    const records = decodeRecords(readFileSync(this.path(h)));
    const keep = Math.floor(this.maxShardBytes / 2 / RECORD_SIZE);
    const seen = new Set<string>();
    const kept: Buffer[] = [];
    for (let i = records.length - 1; i >= 0 && kept.length < keep; i--) {
      const r = records[i]!;
      if (seen.has(r.actionID)) continue;
      seen.add(r.actionID);
      kept.push(encodeRecord(r.actionID, r.ms));
    }
    kept.reverse();
    const log = Buffer.concat(kept);
    const tmp = `${this.path(h)}.${process.pid}.tmp`;
    const fd = openSync(tmp, "w");
    let ino: bigint;
    try {
      for (let off = 0; off < log.length; ) off += writeSync(fd, log, off, log.length - off);
      ino = fstatSync(fd, { bigint: true }).ino;
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path(h));
    this.reindex(h, log, ino);
    this.toIndex.delete(h);
  }
}

/** An open log file as a LogView. */
function fileView(fd: number): LogView {
  const { ino, size } = fstatSync(fd, { bigint: true });
  return { ino, size: Number(size), read: (from, to) => readRange(fd, from, to) };
}

/** Bytes [from, to) of an open file (fewer if it is shorter now). */
function readRange(fd: number, from: number, to: number): Buffer {
  const buf = Buffer.allocUnsafe(Math.max(0, to - from));
  let n = 0;
  while (n < buf.length) {
    const got = readSync(fd, buf, n, buf.length - n, from + n);
    if (got === 0) break;
    n += got;
  }
  return buf.subarray(0, n);
}
