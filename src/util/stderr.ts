// Synchronous writes to stderr. In plugin mode the process exits as soon as
// `go` has its last answer, and a stream write still in flight would be
// lost (or hold the exit); the go command's own logs are synchronous too.

import { writeSync } from "node:fs";

export function writeStderr(text: string): void {
  const bytes = Buffer.from(text);
  for (let off = 0; off < bytes.length; ) {
    try {
      off += writeSync(2, bytes, off, bytes.length - off);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Left non-blocking by whoever started us: let the stream queue it.
      if (code === "EAGAIN") {
        process.stderr.write(bytes.subarray(off));
        return;
      }
      return; // nowhere to log to (EPIPE, EBADF): never fail over a log line
    }
  }
}
