// The cost book's index (store/costs.ts owns the log it indexes): the
// costs of a log's first bytes, sorted, in a file of their own.
//
// Why: a go command with hits looks its costs up in every shard of the
// log, in a fresh process whose JIT is cold. The first index (2026-12-05)
// pointed into the log, so every reader still read the whole log (3.9 MiB
// when full: 16 shards of 256 KiB, about 100,000 actions) to check it was
// the one indexed. This one holds the costs themselves: a reader reads it,
// two samples of the log and the records appended since (the tail), never
// the whole log. `scripts/bench/replay.ts --runs 21` (a warm `go build
// std`'s 1,066 gets, plugin CPU per go command, 2026-12-06): with a full
// book 48.8 ms against 37.9 ms without one before; 41.1 ms against 37.2 ms
// with this index.
//
// Layout: <dir>/gostash-costs/<h>.index beside <h>.log, all little-endian:
//   bytes  0..3   "GSC2"
//   bytes  4..7   M: how many bytes at the start of the log it covers
//   bytes  8..15  the log's inode number when it was indexed
//   bytes 16..23  wyhash (Bun.hash) of the log's first S bytes and the S
//                 bytes before M (S = min(SAMPLE, M))
//   bytes 24..27  K: entries
//   K uint32      key high: bytes 1..4 of the action ID, big-endian
//   K uint32      key low: bytes 5..8, big-endian (sorted by high, then low)
//   K uint32      cost in ms of the newest record with that key
//   uint32        CRC-32 of everything before it
// (read through Uint32Array views: every platform gostash ships for is
// little-endian)
//
// An index is only a shortcut, used only while it still describes the log:
// - the log is appended to, never rewritten in place; a compaction writes
//   a new file and renames it over the log, so the inode changes;
// - an inode number can be reused by a later compaction, whose records
//   differ from the first and at M (the newest ones come first), so the
//   samples must match too;
// - the index file is whole: its CRC checks out.
// Its costs are believed without the full action ID: a wrong cost would
// need two actions of one shard to share 64 bits of their IDs. A cost is
// an estimate (a lost one only leaves a saving uncounted).
//
// The log's layout and meaning are unchanged, so older gostash versions
// read, append to and compact it as before; they keep their own index
// (<h>.idx, "GSCI", offsets into the log), which this version removes when
// it writes its own.

import { recordOffsets } from "./cost-record.ts";

const MAGIC = 0x32435347; // "GSC2" read as little-endian uint32
const HEADER = 28;
/** Bytes of the log hashed at each end of what an index covers. */
export const SAMPLE = 4096;

/** The log as a reader sees it: its identity, its size, and positional reads. */
export interface LogView {
  ino: bigint;
  size: number;
  read(from: number, to: number): Buffer;
}

/** The key of an action ID given in hex: bytes 1..4 and 5..8 as numbers. */
export function keyOfHex(actionID: string): [number, number] {
  return [parseInt(actionID.slice(2, 10), 16), parseInt(actionID.slice(10, 18), 16)];
}

function sampleHash(first: Uint8Array, last: Uint8Array): bigint {
  const both = new Uint8Array(first.length + last.length);
  both.set(first);
  both.set(last, first.length);
  return BigInt.asUintN(64, BigInt(Bun.hash.wyhash(both)));
}

/** The samples of a log's first `covers` bytes, read through view. */
function sampleOf(view: LogView, covers: number): bigint {
  const s = Math.min(SAMPLE, covers);
  return sampleHash(view.read(0, s), view.read(covers - s, covers));
}

/** A log held in memory, seen as a file with inode ino (the writer's own bytes, and tests). */
export function bufferView(log: Buffer, ino = 0n): LogView {
  return { ino, size: log.length, read: (from, to) => log.subarray(from, to) };
}

/** An index of all of log, the file with inode ino. */
export function buildIndex(log: Buffer, ino: bigint): Buffer {
  // The records in file order, sorted by key (stable): the last of each run of one key is its newest.
  const byKey = (a: number, b: number) => log.readUInt32BE(a + 1) - log.readUInt32BE(b + 1) || log.readUInt32BE(a + 5) - log.readUInt32BE(b + 5);
  const sorted = recordOffsets(log).sort(byKey);
  const kept = sorted.filter((o, i) => i + 1 === sorted.length || byKey(o, sorted[i + 1]!) !== 0);
  const k = kept.length;
  const out = Buffer.alloc(HEADER + 12 * k + 4);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt32LE(log.length, 4);
  out.writeBigUInt64LE(ino, 8);
  out.writeBigUInt64LE(sampleOf(bufferView(log), log.length), 16);
  out.writeUInt32LE(k, 24);
  for (let i = 0; i < k; i++) {
    const o = kept[i]!;
    out.writeUInt32LE(log.readUInt32BE(o + 1), HEADER + 4 * i);
    out.writeUInt32LE(log.readUInt32BE(o + 5), HEADER + 4 * (k + i));
    out.writeUInt32LE(log.readUInt32LE(o + 32), HEADER + 4 * (2 * k + i));
  }
  out.writeUInt32LE(Bun.hash.crc32(out.subarray(0, out.length - 4)), out.length - 4);
  return out;
}

/** How many bytes of its log an index file says it covers (0 when it is not one): the writer's cheap check. */
export function indexedLength(head: Uint8Array): number {
  if (head.length < 8) return 0;
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  return b.readUInt32LE(0) === MAGIC ? b.readUInt32LE(4) : 0;
}

export interface CostIndex {
  /** Bytes of the log it covers: the records after them are the tail. */
  readonly covers: number;
  /** The cost of the newest record with this key, if any. */
  cost(hi: number, lo: number): number | undefined;
}

/** The index in idx if it is whole and still describes the log in view; else null. */
export function openIndex(idx: Uint8Array, view: LogView): CostIndex | null {
  if (idx.length < HEADER + 4 || idx.length % 4 !== 0) return null;
  // A Uint32Array view needs 4-byte alignment; a read into a pooled buffer may not have it.
  const own = idx.byteOffset % 4 === 0 ? idx : Uint8Array.from(idx);
  const b = Buffer.from(own.buffer, own.byteOffset, own.byteLength);
  if (b.readUInt32LE(0) !== MAGIC) return null;
  const covers = b.readUInt32LE(4);
  const k = b.readUInt32LE(24);
  if (b.length !== HEADER + 12 * k + 4 || covers > view.size || b.readBigUInt64LE(8) !== view.ino) return null;
  if (Bun.hash.crc32(b.subarray(0, b.length - 4)) !== b.readUInt32LE(b.length - 4)) return null;
  if (sampleOf(view, covers) !== b.readBigUInt64LE(16)) return null;
  const his = new Uint32Array(own.buffer, own.byteOffset + HEADER, k);
  const los = new Uint32Array(own.buffer, own.byteOffset + HEADER + 4 * k, k);
  const costs = new Uint32Array(own.buffer, own.byteOffset + HEADER + 8 * k, k);
  return {
    covers,
    cost(hi, lo) {
      let a = 0;
      let z = k - 1;
      while (a <= z) {
        const mid = (a + z) >>> 1;
        const h = his[mid]!;
        const l = los[mid]!;
        if (h === hi && l === lo) return costs[mid];
        if (h < hi || (h === hi && l < lo)) a = mid + 1;
        else z = mid - 1;
      }
      return undefined;
    },
  };
}
