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

// --debug is a bit mask, as in go-cache-plugin: each bit makes one
// subsystem log every request it handles. Any bit also turns on the
// debug level for everything else (go-cache-plugin: any bit implies -v).
export const DEBUG_BUILD_CACHE = 1;
export const DEBUG_MODPROXY = 2;
export const DEBUG_REVPROXY = 4;

export interface LogOptions {
  verbose?: boolean;
  /** A DEBUG_* bit mask; true means every bit. */
  debug?: number | boolean;
}

let current: Logger | null = null;
let debugMask = 0;

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
  debugMask = opts.debug === true ? 0xffff : opts.debug || 0;
  // Quiet by default: warnings and errors only.
  const level = debugMask ? 5 : opts.verbose ? 4 : 1;
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

/**
 * Where a subsystem logs each request it handles: a function when its
 * --debug bit is set, else null (so callers skip building the line).
 * Request lines go out whatever the level, tagged with the subsystem.
 */
export function requestLog(bit: number, tag: string): ((line: string) => void) | null {
  if (!(debugMask & bit)) return null;
  return (line) => writeStderr(`gostash: ${tag}: ${line}\n`);
}

/** The logger set up by the running command (a quiet one if none was). */
export function log(): Logger {
  return current ?? createLogger();
}
