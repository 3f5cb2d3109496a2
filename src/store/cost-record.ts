// One record of the cost book (store/costs.ts owns the log it is written
// to; store/cost-index.ts the index over it). 40 bytes:
//   bytes  0..31  action ID (binary)
//   bytes 32..35  cost in milliseconds, uint32 little-endian
//   bytes 36..39  CRC-32 of bytes 0..35, uint32 little-endian

export const RECORD_SIZE = 40;
/** Costs are uint32 milliseconds (49 days); anything longer is clamped. */
const MAX_COST_MS = 0xffffffff;

export function encodeRecord(actionID: string, ms: number): Buffer {
  const rec = Buffer.alloc(RECORD_SIZE);
  rec.write(actionID, 0, 32, "hex");
  rec.writeUInt32LE(Math.max(0, Math.min(MAX_COST_MS, Math.round(ms))), 32);
  rec.writeUInt32LE(Bun.hash.crc32(rec.subarray(0, 36)), 36);
  return rec;
}

/** Does a whole record start at offset o of b (its CRC checks out)? */
export function isRecordAt(b: Buffer, o: number): boolean {
  return o + RECORD_SIZE <= b.length && Bun.hash.crc32(b.subarray(o, o + 36)) === b.readUInt32LE(o + 36);
}

/** Offsets of every record of a log from `from` on that checks out, in file order (torn or corrupt stretches skipped). */
export function recordOffsets(log: Buffer, from = 0): number[] {
  const out: number[] = [];
  let o = from;
  while (o + RECORD_SIZE <= log.length) {
    if (isRecordAt(log, o)) {
      out.push(o);
      o += RECORD_SIZE;
    } else o++;
  }
  return out;
}

/** Every valid record in a shard's bytes, in file order (torn or corrupt stretches skipped). */
export function decodeRecords(buf: Uint8Array): { actionID: string; ms: number }[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return recordOffsets(b).map((o) => ({ actionID: b.toString("hex", o, o + 32), ms: b.readUInt32LE(o + 32) }));
}
