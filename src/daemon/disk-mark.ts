// The disk mark: how `gostash connect` learns that it sees the daemon's
// build-cache directory, so that it may answer the go command's local hits
// from that disk itself instead of through the daemon (bridge/local-hits.ts).
//
// At start, a daemon writes a fresh random mark to
//
//   <cache dir>/gostash-daemon.mark     32 hex digits and a newline
//
// and offers the directory and the mark in its capability line
// (daemon/hello.ts, "GostashDisk"). A bridge that reads the same mark in
// that file sees the same directory: same machine (or the same shared
// filesystem), same path. A bridge on another machine finds no such file,
// or another daemon's mark, and forwards every get as before. A second
// daemon on the same directory overwrites the mark: the first one's bridges
// stop answering locally, which costs them speed, never a wrong answer.

import { randomBytes } from "node:crypto";
import { readFileSync, renameSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeWholeSync } from "../util/write-file.ts";

export const MARK_FILE = "gostash-daemon.mark";

/** A daemon's build-cache directory and the mark it wrote there. */
export interface DiskMark {
  dir: string;
  mark: string;
}

/** Writes a fresh mark into dir (atomically); throws if it cannot. The directory offered is absolute. */
export function writeDiskMark(cacheDir: string): DiskMark {
  const dir = resolve(cacheDir);
  const mark = randomBytes(16).toString("hex");
  const tmp = join(dir, `${MARK_FILE}.${process.pid}.tmp`);
  writeWholeSync(tmp, `${mark}\n`, "w");
  renameSync(tmp, join(dir, MARK_FILE));
  return { dir, mark };
}

/** This process sees the directory the daemon offered: its mark file holds the daemon's mark. */
export function seesDisk(d: DiskMark): boolean {
  try {
    return readFileSync(join(d.dir, MARK_FILE), "latin1").trim() === d.mark;
  } catch {
    return false;
  }
}
