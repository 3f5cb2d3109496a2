// Writing a small file whole, synchronously, with the three system calls it
// takes: open, write (until all is written), close. Bun's writeFileSync
// adds an ftruncate to the length just written, which on a fresh ext4 cost
// a quarter of the time of creating a few thousand cache files (the local
// store writes one entry per put and two files per entry landed from a
// pack). Throws like writeFileSync; a file it created stays behind on an
// error (the caller owns its name and removes it).

import { closeSync, openSync, writeSync } from "node:fs";

/** flag: "w" (create or truncate) or "wx" (create; EEXIST if it is there). */
export function writeWholeSync(path: string, data: Uint8Array | string, flag: "w" | "wx", mode = 0o644): void {
  const bytes = typeof data === "string" ? Buffer.from(data, "latin1") : data;
  const fd = openSync(path, flag, mode);
  try {
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
  } finally {
    closeSync(fd);
  }
}
