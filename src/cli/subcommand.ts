// A command that only groups others (`gostash mod`, `ci`, `revproxy`) run
// without one of them: said on stderr with the usage pointer, exit 2, as
// any other wrong command line (citty would run the group silently).

import { writeStderr } from "../util/std-output.ts";

/** The exit status after telling the user which commands `gostash <group>` has. */
export function noSubcommand(group: string, names: string[]): number {
  writeStderr(`gostash ${group}: name a command: ${names.join(", ")}\nRun 'gostash ${group} --help' for usage.\n`);
  return 2;
}
