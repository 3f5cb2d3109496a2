// Whole outputs written into the local store off the event loop, for bulk
// downloads (packs: pack-stream.ts). Same layout and the same atomicity as
// the synchronous writes in disk.ts: a temp file in the same subdirectory,
// renamed into place, output before entry.
//
// Why a second path: landing a pack is about two thousand file creations,
// and on a busy machine each can take a millisecond. Done synchronously,
// they keep the process from reading the go command's next request (the
// go command waits for each answer); through the thread pool, many are in
// flight at once and the event loop stays free to answer.

import { mkdir, rename, unlink, writeFile } from "node:fs/promises";
import { ENTRY_SIZE, formatEntry, isDiskTrouble, type StoredOutput } from "./disk-layout.ts";

let seq = 0;

/** What disk.ts's store lends this module. */
export interface AsyncWriteTarget {
  /** The cache directory with a trailing slash. */
  readonly base: string;
  /** Subdirectories known to exist. */
  readonly madeDirs: Set<string>;
  /** Counts bytes written (the store's usage estimate). */
  wrote(bytes: number): void;
  /** Told about a full disk, a read-only directory (the store's one warning). */
  trouble(err: unknown): void;
}

const pendingDirs = new Map<string, Promise<unknown>>();

async function subdir(t: AsyncWriteTarget, id: string): Promise<string> {
  const sub = t.base + id.slice(0, 2);
  if (t.madeDirs.has(sub)) return sub;
  let p = pendingDirs.get(sub);
  if (!p) pendingDirs.set(sub, (p = mkdir(sub, { recursive: true }).finally(() => pendingDirs.delete(sub))));
  await p;
  t.madeDirs.add(sub);
  return sub;
}

/** Writes a file atomically: a temp file beside it, then a rename. */
async function writeAtomic(dir: string, name: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = `${dir}/${name}.${process.pid}.a${++seq}.tmp`;
  try {
    await writeFile(tmp, bytes, { mode: 0o644 });
    await rename(tmp, `${dir}/${name}`);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/**
 * Stores a whole, already verified output and its entry. Throws the file
 * system's error (a full disk, a read-only directory): the caller counts it
 * and the go command gets a miss for it.
 */
export async function writeWholeAsync(t: AsyncWriteTarget, actionID: string, outputID: string, bytes: Uint8Array, timeNanos: bigint): Promise<StoredOutput> {
  try {
    const outDir = await subdir(t, outputID);
    await writeAtomic(outDir, `${outputID}-d`, bytes);
    const entryDir = await subdir(t, actionID);
    await writeAtomic(entryDir, `${actionID}-a`, formatEntry(actionID, outputID, bytes.length, timeNanos));
    t.wrote(bytes.length + ENTRY_SIZE);
    return { outputID, size: bytes.length, timeNanos, diskPath: `${outDir}/${outputID}-d` };
  } catch (err) {
    if (isDiskTrouble(err)) t.trouble(err);
    throw err;
  }
}
