// Whole outputs stored at once, for bulk landing (packs: pack-frame.ts, on
// the landing threads). Same layout as disk.ts's writes, fewer file system
// operations, since a fresh machine lands a few thousand files and each
// creation is most of the cost:
//
//   - an output file already there with the right size is kept: it holds
//     the same bytes (its name is their SHA-256), so outputs that several
//     actions share (the empty output of hundreds of them) are written once;
//     its mtime is refreshed as a hit's would be (it is about to be used);
//   - a missing file is created under its own name with O_EXCL and written
//     whole (no temp file, no rename): until it is complete it is shorter
//     than its entry says, so nobody takes it for a hit (disk.ts's get, and
//     go, compare sizes), and the entry is written only after it;
//   - an entry file that is not there is created the same way: a cut one
//     does not parse, which is a miss.
//
// Anything else (a file of the wrong size, a race with another writer, a
// full or read-only disk) takes disk.ts's ordinary path: temp file and
// rename, with its overflow directory.

import { statSync, unlinkSync } from "node:fs";
import { writeWholeSync } from "../util/write-file.ts";
import { ENTRY_SIZE, formatEntry, isDiskTrouble, markUsed, type StoredOutput } from "./disk-layout.ts";

/** What disk.ts's store lends this module. */
export interface WholeTarget {
  /** The cache directory with a trailing slash. */
  readonly base: string;
  ensureSubdir(id: string): string;
  /** disk.ts's ordinary put (its DiskPut). */
  put(actionID: string, outputID: string, size: number): { write(bytes: Uint8Array): void; commit(timeNanos: bigint): StoredOutput; abort(): void };
  writeEntry(actionID: string, outputID: string, size: number, timeNanos: bigint): void;
  wrote(bytes: number): void;
  trouble(err: unknown): void;
}

export function putWhole(t: WholeTarget, actionID: string, outputID: string, bytes: Uint8Array, timeNanos: bigint): StoredOutput {
  const diskPath = `${t.ensureSubdir(outputID)}/${outputID}-d`;
  if (!placeOutput(diskPath, bytes)) return putOrdinary(t, actionID, outputID, bytes, timeNanos);
  const out = { outputID, size: bytes.length, timeNanos, diskPath };
  const entry = `${t.ensureSubdir(actionID)}/${actionID}-a`;
  if (!createWhole(entry, formatEntry(actionID, outputID, bytes.length, timeNanos))) {
    try {
      t.writeEntry(actionID, outputID, bytes.length, timeNanos);
    } catch (err) {
      // As in disk.ts: the output is in place and whole, so it is served; only a later hit is lost.
      if (!isDiskTrouble(err)) throw err;
      t.trouble(err);
      return out;
    }
  }
  t.wrote(bytes.length + ENTRY_SIZE);
  return out;
}

/**
 * The output at its path: true if it is there now (kept or created). A
 * kept one counts as used now, as a hit does (disk.ts markUsed): its DiskPath
 * is about to be handed out, and a size-capped trim takes the least recently
 * used files first.
 */
function placeOutput(path: string, bytes: Uint8Array): boolean {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return createWhole(path, bytes);
  if (!st.isFile() || st.size !== bytes.length) return false;
  markUsed(path, st.mtimeMs, Date.now());
  return true;
}

/** Creates a file that must not exist yet and writes it whole; false (and nothing left behind) if that did not work. */
function createWhole(path: string, data: Uint8Array | string): boolean {
  try {
    writeWholeSync(path, data, "wx");
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
      try {
        unlinkSync(path);
      } catch {}
    }
    return false;
  }
}

function putOrdinary(t: WholeTarget, actionID: string, outputID: string, bytes: Uint8Array, timeNanos: bigint): StoredOutput {
  const put = t.put(actionID, outputID, bytes.length);
  try {
    put.write(bytes);
  } catch (err) {
    put.abort();
    throw err;
  }
  return put.commit(timeNanos);
}
