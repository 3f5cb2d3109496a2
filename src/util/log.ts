// Logging goes to stderr only: in plugin mode stdout belongs to the
// protocol. This module is the only place a logger is made.
//
// It uses consola's core (levels, tags, the logging API) with a plain-text
// reporter of our own. consola's default entry point would write info to
// stdout, and its fancy and basic reporters load node:tty and node:util,
// which costs tens of milliseconds before the first protocol answer.

import { createConsola, type ConsolaInstance, type LogObject } from "consola/core";
import { writeStderr } from "./std-output.ts";

/** What the code logs through: consola's level methods. */
export type Logger = Pick<ConsolaInstance, "debug" | "info" | "warn" | "error">;

export interface LogOptions {
  verbose?: boolean;
  debug?: boolean;
}

let current: Logger | null = null;

function formatArg(a: unknown): string {
  if (typeof a === "string") return a;
  if (a instanceof Error) return a.message;
  try {
    return JSON.stringify(a);
  } catch {
    return String(a);
  }
}

const stderrReporter = {
  log(o: LogObject): void {
    const level = o.type === "log" || o.type === "info" ? "" : `${o.type}: `;
    const tag = o.tag ? `${o.tag}: ` : "";
    writeStderr(`${tag}${level}${o.args.map(formatArg).join(" ")}\n`);
  },
};

export function createLogger(opts: LogOptions = {}): Logger {
  // Quiet by default: warnings and errors only.
  const level = opts.debug ? 5 : opts.verbose ? 4 : 1;
  // consola is set up on the first line that is printed: creating it costs
  // about a millisecond, which plugin mode would add to every go command
  // that logs nothing.
  let inner: ConsolaInstance | null = null;
  const at =
    (minLevel: number, method: keyof Logger) =>
    (...args: unknown[]) => {
      if (level < minLevel) return;
      inner ??= createConsola({ level, reporters: [stderrReporter] }).withTag("gostash");
      inner[method](...(args as [unknown]));
    };
  current = { error: at(0, "error"), warn: at(1, "warn"), info: at(3, "info"), debug: at(4, "debug") } as Logger;
  return current;
}

/** The logger set up by the running command (a quiet one if none was). */
export function log(): Logger {
  return current ?? createLogger();
}
