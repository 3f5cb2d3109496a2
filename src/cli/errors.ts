// How a failed command is reported: one line on stderr naming what failed,
// and an exit status the caller can act on.
//
//   usage (a flag, a variable, a combination)   exit 2, points at the command's --help
//   start-up (listen, bind, the cache directory) exit 1, one line: the user can fix it
//   anything else (a bug)                       exit 1, with the stack
//
// Light on purpose: cli.ts uses it before the capability line.

import { writeStderr } from "../util/std-output.ts";

/**
 * The command could not start for a reason outside its arguments: an
 * address in use, a cache directory that is a file or read-only. The
 * message names the subsystem and the cause; it is never a config error.
 */
export class StartupError extends Error {
  override name = "StartupError";
}

/** Errors that are about the command line: ConfigError, citty's, "config: ..." from the parsers. */
function isUsageError(e: Error): boolean {
  return e.name === "ConfigError" || e.name === "CLIError" || e.name === "UsageError" || (e.message ?? "").startsWith("config:");
}

/** Each command group's commands, whose own --help a usage error points at. */
const SUBCOMMANDS: Record<string, string[]> = { mod: ["import", "export"], ci: ["mtimes", "summary"], revproxy: ["ca"] };

/** The command whose --help a usage error points at: "gostash", "gostash serve", "gostash mod import", "gostash revproxy ca". */
export function commandName(command: string | null, args: readonly string[]): string {
  const names = ["gostash"];
  if (command) names.push(command);
  const subs = command ? SUBCOMMANDS[command] : undefined;
  if (subs) {
    const sub = args.find((a) => !a.startsWith("-"));
    if (sub && subs.includes(sub)) names.push(sub);
  }
  return names.join(" ");
}

/** Writes the error to stderr and returns the exit status. */
export function reportError(err: unknown, command: string): number {
  const e = err instanceof Error ? err : new Error(String(err));
  if (isUsageError(e)) {
    writeStderr(`gostash: ${e.message}\nRun '${command} --help' for usage.\n`);
    return 2;
  }
  if (e instanceof StartupError) {
    writeStderr(`gostash: ${e.message}\n`);
    return 1;
  }
  writeStderr(`gostash: ${e.stack ?? e.message}\n`);
  return 1;
}
