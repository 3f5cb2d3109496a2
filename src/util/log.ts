// Logging goes to stderr only: in plugin mode stdout belongs to the
// protocol. consola's default reporter would write info to stdout, so both
// streams are pointed at stderr here, and this module is the only place a
// logger is made.

import { createConsola, type ConsolaInstance } from "consola";

export type Logger = ConsolaInstance;

export interface LogOptions {
  verbose?: boolean;
  debug?: boolean;
}

let current: Logger | null = null;

export function createLogger(opts: LogOptions = {}): Logger {
  // Quiet by default: warnings and errors only.
  const level = opts.debug ? 5 : opts.verbose ? 4 : 1;
  current = createConsola({
    level,
    stdout: process.stderr,
    stderr: process.stderr,
    formatOptions: { date: false, colors: !!process.stderr.isTTY, compact: true },
  }).withTag("gostash");
  return current;
}

/** The logger set up by the running command (a quiet one if none was). */
export function log(): Logger {
  return current ?? createLogger();
}
