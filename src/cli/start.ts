// What this run is, decided from the arguments and stdin alone, and what
// the two modes the go command runs (plugin mode and connect) check before
// cli.ts prints the capability line.
//
// Plugin mode only when the go command runs us: it gives us a pipe, never a
// terminal. `gostash` typed at a terminal is a person, who gets the help
// instead of a line of JSON and silence.
//
// A bad flag or variable, or a cache directory that cannot be used, stops
// plugin mode before the capability line: the error goes to stderr, which
// the go command shows, and stdout (the protocol) stays empty.
//
// Only light modules here: the go command waits for the capability line.

import type { SplitArgs } from "../cli-args.ts";
import { localConfig, s3Config } from "../config/config.ts";
import { connectConfig, type ConnectConfig } from "../config/daemon.ts";
import { positionalArgs, readFlags, type Flags } from "../config/flags.ts";
import { connectFlags, connectIgnoredFlags, localFlags, logFlags, s3Flags } from "../config/options.ts";
import { checkCacheDir } from "./cache-dir.ts";

/** The flags of plugin mode (no subcommand). */
export const pluginFlagSpecs = { ...logFlags, ...localFlags, ...s3Flags };
/** The flags of `gostash connect` (go-cache-plugin's global bucket flags are taken and ignored there). */
export const connectFlagSpecs = { ...logFlags, ...localFlags, ...connectFlags, ...connectIgnoredFlags };

export type RunMode = "plugin" | "connect" | "help" | "version" | "command";

export type Start =
  | { mode: "help" | "version" | "command" }
  | { mode: "plugin"; flags: Flags }
  | { mode: "connect"; flags: Flags; config: ConnectConfig };

export function runMode(split: SplitArgs, stdinIsTerminal: boolean): RunMode {
  if (split.help) return "help";
  if (split.version) return "version";
  if (split.command === "connect") return "connect";
  if (split.command !== null) return "command";
  return stdinIsTerminal ? "help" : "plugin";
}

/** Plugin mode's flags, checked, and its local cache directory, usable. Throws ConfigError or StartupError. */
export function checkPluginArgs(args: string[]): Flags {
  const flags = readFlags(args, pluginFlagSpecs);
  checkCacheDir(localConfig(flags).cacheDir, flags.source("cache-dir"));
  s3Config(flags); // its checks (an endpoint that is not a URL) before the capability line
  return flags;
}

/** connect's address: its one positional argument. */
export function connectPositional(args: string[]): string | undefined {
  return positionalArgs(args, connectFlagSpecs)[0];
}

/**
 * connect's flags and address, checked, and its local cache directory (the
 * fallback when the daemon is away), usable: plain go also refuses a
 * GOCACHE it cannot use, daemon or not.
 */
export function checkConnectArgs(args: string[]): { flags: Flags; config: ConnectConfig } {
  const flags = readFlags(args, connectFlagSpecs, 1);
  const config = connectConfig(flags, connectPositional(args));
  checkCacheDir(localConfig(flags).cacheDir, flags.source("cache-dir"));
  return { flags, config };
}

/** The checks of the mode, before the capability line; other modes check nothing here. */
export function preflight(mode: RunMode, args: string[]): Start {
  if (mode === "plugin") return { mode, flags: checkPluginArgs(args) };
  if (mode === "connect") return { mode, ...checkConnectArgs(args) };
  return { mode };
}
