// Landing one frame of a pack (packs.ts) into the local store: decompress
// it, cut it into outputs, check each against its output ID (SHA-256) and
// size exactly like a per-action object (s3-objects.ts), and write the good
// ones with the store's synchronous bulk writes (disk-whole.ts: output
// before entry). A bad output is reported and skipped; the others
// are good or bad on their own. A frame that does not decompress, or not to
// the length its head says, fails every output in it; so does one whose
// zstd header does not promise that length, before it is decompressed
// (util/zstd-bounded.ts: a small frame may expand to gigabytes).
//
// Synchronous on purpose: it runs on the landing worker's thread
// (pack-land-worker.ts), where blocking costs nobody anything and a
// thread-pool round trip per file would cost about as much as the write.
// Its input and output are plain data, so they cross the thread boundary
// as they are.

import type { DiskStore, StoredOutput } from "./disk.ts";
import { verifyOutput } from "./s3-objects.ts";
import { zstdDecompressAtMost } from "../util/zstd-bounded.ts";

/** One output of a frame, as the head describes it. */
export interface FrameEntryJob {
  actionID: string;
  /** Where its bytes start in the frame's raw bytes; it is `size` long. */
  offset: number;
  outputID: string;
  size: number;
  timeNanos: bigint;
}

/** A frame as it came from the pack, with the entries of it to land. */
export interface FrameJob {
  stored: Uint8Array;
  zstd: boolean;
  rawLength: number;
  /** Names the frame in errors ("s3: pack <name>: frame 3"). */
  what: string;
  entries: FrameEntryJob[];
}

/** What became of one entry. `bad`: its bytes are wrong (the pack's fault), else the local disk failed. */
export type EntryResult = { ok: true; out: StoredOutput } | { ok: false; bad: boolean; message: string; code?: string };

/** Lands every entry of a frame, telling each(i, result) per entry, in order, as soon as it is known. */
export function landFrame(disk: DiskStore, job: FrameJob, each: (i: number, r: EntryResult) => void): void {
  let raw: Uint8Array;
  try {
    raw = decodeFrame(job);
  } catch (err) {
    const message = (err as Error).message;
    job.entries.forEach((_, i) => each(i, { ok: false, bad: true, message }));
    return;
  }
  job.entries.forEach((e, i) => each(i, landEntry(disk, e, raw.subarray(e.offset, e.offset + e.size), job.what)));
}

function decodeFrame(job: FrameJob): Uint8Array {
  if (!job.zstd) return job.stored;
  let raw: Uint8Array;
  try {
    raw = zstdDecompressAtMost(job.stored, job.rawLength);
  } catch (err) {
    throw new Error(`${job.what}: does not decompress: ${(err as Error)?.message ?? err}`);
  }
  if (raw.length !== job.rawLength) throw new Error(`${job.what}: decompresses to ${raw.length} bytes, its head says ${job.rawLength}`);
  return raw;
}

function landEntry(disk: DiskStore, e: FrameEntryJob, out: Uint8Array, what: string): EntryResult {
  try {
    verifyOutput(e, out, (why: string): never => {
      throw new Error(`${what}: entry ${e.actionID}: ${why}`);
    });
  } catch (err) {
    return { ok: false, bad: true, message: (err as Error).message };
  }
  try {
    return { ok: true, out: disk.putWhole(e.actionID, e.outputID, out, e.timeNanos) };
  } catch (err) {
    return { ok: false, bad: false, message: `disk store: ${(err as Error)?.message ?? err}`, code: (err as NodeJS.ErrnoException).code };
  }
}
