// Synchronous writes to stdout and stderr. In plugin mode the process exits
// as soon as `go` has its last answer, and a stream write still in flight
// would be lost (or hold the exit); the go command's own logs are
// synchronous too.

import { closeSync, openSync, writeSync } from "node:fs";

/**
 * Writes bytes[from..] to fd with blocking writes and returns where it
 * stopped: bytes.length, or earlier if fd is non-blocking and full (EAGAIN;
 * left so by whoever started us). Other errors are thrown.
 */
export function writeFdSync(fd: number, bytes: Uint8Array, from = 0): number {
  let off = from;
  while (off < bytes.length) {
    try {
      off += writeSync(fd, bytes, off, bytes.length - off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EAGAIN") return off;
      throw err;
    }
  }
  return off;
}

let streamed = false;

/** Some log text went through the process.stderr stream and may not be written yet. */
export function stderrQueued(): boolean {
  return streamed;
}

export function writeStderr(text: string): void {
  const bytes = Buffer.from(text);
  let off: number;
  try {
    off = writeFdSync(2, bytes);
  } catch {
    return; // nowhere to log to (EPIPE, EBADF): never fail over a log line
  }
  // Non-blocking and full: let the stream queue the rest.
  if (off < bytes.length) {
    streamed = true;
    process.stderr.write(bytes.subarray(off));
  }
}

/**
 * After the answer to `close`, `go` closes our stdin and waits until our
 * stdout closes (cmd/go/internal/cache/prog.go), not for us to exit: so
 * plugin mode and the bridge close stdout then, and the exit (summary,
 * runtime teardown: a few milliseconds) no longer delays the go command.
 * /dev/null takes fd 1 so a stray write can never land in a file opened
 * later.
 */
export function releaseStdout(): void {
  try {
    closeSync(1);
    openSync("/dev/null", "w");
  } catch {
    // stdout stays open until exit: only slower.
  }
}
