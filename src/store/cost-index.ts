// The cost book's sorted index (store/costs.ts owns the log it indexes).
//
// Why: a go command with hits looks its costs up in every shard of the
// log. Without an index it must read each shard and build a map of all its
// records, in a fresh process whose JIT is cold. With a full log (16 shards
// of 256 KiB, about 100,000 actions) a warm `go build std` took the plugin
// 98 ms of CPU against 72 ms with no log; with the index, 84 ms (median of
// 10 runs each). A shard is then two reads, a hash and a CRC, and a binary
// search per lookup; only the records appended since the index was written
// (its tail, kept short by the writer) go into a map. What is left is
// mostly reading the whole log (3.9 MiB, about 3 ms) to check it is the
// one the index was built from.
//
// Layout: <dir>/gostash-costs/<h>.idx beside <h>.log, all little-endian:
//   bytes  0..3   "GSCI"
//   bytes  4..7   M: how many bytes at the start of the log it indexes
//   bytes  8..15  wyhash (Bun.hash) of those M bytes of the log
//   bytes 16..19  K: entries
//   K uint32      keys, ascending: bytes 1..4 of the action ID, big-endian
//                 (byte 0 is mostly the shard's digit)
//   K uint32      offsets in the log of the newest record with that key
//   uint32        CRC-32 of everything before it
// (read through Uint32Array views: every platform gostash ships for is
// little-endian)
//
// An index is only a shortcut. It is used only while the log's first M
// bytes are the ones it was built from: a compaction rewrites them, and the
// hash no longer matches. (Not a CRC-32: every record ends in its own CRC,
// which brings CRC-32's state back to the same value after each record, so
// the CRC of a whole log depends on its length alone.) Every record it
// points to is checked in full (ID and the record's own CRC) before its
// cost is believed. Two actions of one shard with the same key (about 0.5%
// of full shards hold such a pair) keep the newer one's cost, as the log's
// map always did. The log's layout and meaning are unchanged, so older
// gostash versions read and compact it as before and never look at the
// index.

import { recordOffsets } from "./cost-record.ts";

const MAGIC = 0x49435347; // "GSCI" read as little-endian uint32
const HEADER = 20;
/** Records per shard an index can name (seq * 2^21 must fit a double's 53 bits with a 32-bit key). */
const MAX_ENTRIES = 1 << 21;

/** The lookup key of an action ID (32 binary bytes at offset o of b). */
export function keyOf(b: Uint8Array, o = 0): number {
  return ((b[o + 1]! << 24) >>> 0) + (b[o + 2]! << 16) + (b[o + 3]! << 8) + b[o + 4]!;
}

/** What tells the log an index was built from apart from any other (as a uint64). */
function fingerprint(log: Uint8Array): bigint {
  return BigInt.asUintN(64, BigInt(Bun.hash.wyhash(log)));
}

/** An index of all of log (null when it holds more records than an index can name). */
export function buildIndex(log: Buffer): Buffer | null {
  const offsets = recordOffsets(log);
  if (offsets.length >= MAX_ENTRIES) return null;
  // key * 2^21 + seq sorts by key, then by file order: the last of each run of one key is its newest record.
  const order = new Float64Array(offsets.length);
  for (let i = 0; i < offsets.length; i++) order[i] = keyOf(log, offsets[i]!) * MAX_ENTRIES + i;
  order.sort();
  const keys: number[] = [];
  const at: number[] = [];
  for (let i = 0; i < order.length; i++) {
    const v = order[i]!;
    const key = Math.floor(v / MAX_ENTRIES);
    if (i + 1 < order.length && Math.floor(order[i + 1]! / MAX_ENTRIES) === key) continue;
    keys.push(key);
    at.push(offsets[v - key * MAX_ENTRIES]!);
  }
  const k = keys.length;
  const out = Buffer.alloc(HEADER + 8 * k + 4);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt32LE(log.length, 4);
  out.writeBigUInt64LE(fingerprint(log), 8);
  out.writeUInt32LE(k, 16);
  for (let i = 0; i < k; i++) {
    out.writeUInt32LE(keys[i]!, HEADER + 4 * i);
    out.writeUInt32LE(at[i]!, HEADER + 4 * (k + i));
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
  /** Offset in the log of the newest record whose key is key's, if any. */
  find(key: number): number | undefined;
}

/** The index in idx if it is whole and was built from the start of log as it is now; else null. */
export function openIndex(idx: Uint8Array, log: Buffer): CostIndex | null {
  if (idx.length < HEADER + 4 || idx.length % 4 !== 0) return null;
  // A Uint32Array view needs 4-byte alignment; a read into a pooled buffer may not have it.
  const own = idx.byteOffset % 4 === 0 ? idx : Uint8Array.from(idx);
  const b = Buffer.from(own.buffer, own.byteOffset, own.byteLength);
  if (b.readUInt32LE(0) !== MAGIC) return null;
  const covers = b.readUInt32LE(4);
  const k = b.readUInt32LE(16);
  if (b.length !== HEADER + 8 * k + 4 || covers > log.length) return null;
  if (Bun.hash.crc32(b.subarray(0, b.length - 4)) !== b.readUInt32LE(b.length - 4)) return null;
  if (fingerprint(log.subarray(0, covers)) !== b.readBigUInt64LE(8)) return null;
  const keys = new Uint32Array(own.buffer, own.byteOffset + HEADER, k);
  const at = new Uint32Array(own.buffer, own.byteOffset + HEADER + 4 * k, k);
  return {
    covers,
    find(key) {
      let lo = 0;
      let hi = k - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        const v = keys[mid]!;
        if (v === key) return at[mid];
        if (v < key) lo = mid + 1;
        else hi = mid - 1;
      }
      return undefined;
    },
  };
}
