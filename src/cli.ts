// Entry point of the gostash binary.
//
// As GOCACHEPROG, `go` waits (without a timeout) for the capability line
// before it sends anything, so plugin mode prints it here, first, with one
// synchronous write, before the rest of the program is even evaluated.
import { writeSync } from "node:fs";
import { CAPABILITY_LINE } from "./cacheprog/protocol.ts";
import { splitArgs } from "./cli-args.ts";
import { FLAG_ALIASES, VALUE_FLAGS } from "./config/value-flags.ts";

const split = splitArgs(process.argv.slice(2), VALUE_FLAGS, FLAG_ALIASES);
// `connect` (the daemon bridge, also run by `go` as GOCACHEPROG) prints it
// here too, and drops the daemon's copy.
const pluginMode = (split.command === null || split.command === "connect") && !split.help;
if (pluginMode) writeSync(1, CAPABILITY_LINE);

import("./main.ts")
  .then((m) => m.main(split))
  .then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`gostash: ${(err as Error)?.stack ?? err}\n`);
      process.exit(1);
    },
  );
