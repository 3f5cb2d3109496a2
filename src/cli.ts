// Entry point of the gostash binary.
//
// As GOCACHEPROG, `go` waits (without a timeout) for the capability line
// before it sends anything, so plugin mode prints it here, first, with one
// synchronous write, before the rest of the program is even evaluated. Only
// the arguments, the environment and the cache directory are checked before
// it (cli/start.ts): a bad one is an error on stderr, and stdout, the
// protocol, stays empty.
import { fstatSync, writeSync } from "node:fs";
import { CAPABILITY_LINE } from "./cacheprog/protocol.ts";
import { splitArgs } from "./cli-args.ts";
import { commandName, reportError } from "./cli/errors.ts";
import { preflight, runMode, type Start } from "./cli/start.ts";
import { stderrQueued } from "./util/std-output.ts";
import { FLAG_ALIASES, VALUE_FLAGS } from "./config/value-flags.ts";

/**
 * Is stdin a terminal (a person typed the command)? The go command gives
 * us a pipe, and then node:tty, which costs 2-3 ms to load, is never
 * loaded: only a character device (a terminal, or /dev/null) is asked.
 */
function stdinIsTerminal(): boolean {
  try {
    if (!fstatSync(0).isCharacterDevice()) return false;
  } catch {
    return false; // no stdin at all
  }
  return (process.getBuiltinModule("node:tty") as typeof import("node:tty")).isatty(0);
}

const split = splitArgs(process.argv.slice(2), VALUE_FLAGS, FLAG_ALIASES);
const mode = runMode(split, stdinIsTerminal());
// `connect` (the daemon bridge, also run by `go` as GOCACHEPROG) prints it
// here too, and drops the daemon's copy.
const pluginMode = mode === "plugin" || mode === "connect";

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

let start: Start | null = null;
try {
  start = preflight(mode, split.args);
} catch (err) {
  exitWhenFlushed(reportError(err, commandName(split.command, split.args)));
}
if (start) {
  if (pluginMode) writeSync(1, CAPABILITY_LINE);
  const checked = start;
  import("./main.ts")
    .then((m) => m.main(split, checked))
    .then(exitWhenFlushed, (err) => {
      writeSync(2, `gostash: ${(err as Error)?.stack ?? err}\n`);
      exitWhenFlushed(1);
    });
}
