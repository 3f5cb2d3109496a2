// Entry point of the gostash binary.
//
// As GOCACHEPROG, `go` waits (without a timeout) for the capability line
// before it sends anything, so plugin mode prints it here, first, with one
// synchronous write, before the rest of the program is even evaluated.
import { writeSync } from "node:fs";
import { CAPABILITY_LINE } from "./cacheprog/protocol.ts";
import { splitArgs } from "./cli-args.ts";
import { stderrQueued } from "./util/std-output.ts";
import { FLAG_ALIASES, VALUE_FLAGS } from "./config/value-flags.ts";

const split = splitArgs(process.argv.slice(2), VALUE_FLAGS, FLAG_ALIASES);
// `connect` (the daemon bridge, also run by `go` as GOCACHEPROG) prints it
// here too, and drops the daemon's copy.
const pluginMode = (split.command === null || split.command === "connect") && !split.help;
if (pluginMode) writeSync(1, CAPABILITY_LINE);

// process.exit() drops what stdout/stderr have not written yet (help,
// `version`, the last log lines), so exit only once both have drained; the
// cap keeps a reader that went away from holding the exit forever. In
// plugin mode every answer and log line was written synchronously (or the
// protocol writer flushed before serveStdio returned; on the blocking path
// stdout is already closed, releaseStdout), so exit at once: touching process.stdout just to
// drain it costs milliseconds. Only a log line that met a full non-blocking
// stderr went to the stream, and then the exit waits for it.
function exitWhenFlushed(code: number): void {
  if (pluginMode && !stderrQueued()) process.exit(code);
  const drained = [process.stdout, process.stderr].map((s) => new Promise<void>((r) => s.write("", () => r())));
  const cap = new Promise<void>((r) => setTimeout(r, 5000));
  void Promise.race([Promise.all(drained), cap]).then(() => process.exit(code));
}

import("./main.ts")
  .then((m) => m.main(split))
  .then(exitWhenFlushed, (err) => {
    writeSync(2, `gostash: ${(err as Error)?.stack ?? err}\n`);
    exitWhenFlushed(1);
  });
