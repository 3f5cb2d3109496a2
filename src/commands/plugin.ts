// Direct plugin mode: `GOCACHEPROG=gostash [flags]`. cli.ts has already
// printed the capability line; this reads the flags, opens the build cache
// and serves the stdio session, then trims once the go command has its
// answers.

import type { CommandDef } from "citty";
import type { CacheHandler } from "../cacheprog/session.ts";
import { serveStdio } from "../cacheprog/stdio.ts";
import { openBuildCache } from "../buildcache/open.ts";
import { localConfig, logConfig, s3Config } from "../config/config.ts";
import { readFlags, toCittyArgs } from "../config/flags.ts";
import { localFlags, logFlags, s3Flags } from "../config/options.ts";
import { createLogger, type Logger } from "../util/log.ts";
import { Metrics } from "../util/metrics.ts";
import { printSummary } from "../util/summary.ts";
import { writeStderr } from "../util/std-output.ts";

/**
 * Serves one `go` command on stdin/stdout from handler and returns the exit
 * code: direct mode, and `connect` when the daemon cannot be reached.
 */
export async function servePluginStdio(
  handler: CacheHandler,
  o: { metrics: Metrics; logger: Logger; tag: string; summary: boolean },
): Promise<number> {
  const res = await serveStdio(handler, {
    onError(err, req) {
      o.metrics.inc("errors");
      o.logger.warn(`${o.tag}: ${req.command} ${req.id}: ${(err as Error)?.message ?? err}`);
    },
  });
  if (o.summary) printSummary(o.metrics);
  if (res.reason === "framing") {
    writeStderr(`gostash: ${res.error!.message}; stopping\n`);
    return 1;
  }
  return 0;
}

export const pluginFlags = { ...logFlags, ...localFlags, ...s3Flags };

/** Plugin mode from its raw arguments (main.ts calls it without citty's parser). */
export async function runPlugin(rawArgs: string[]): Promise<number> {
  const flags = readFlags(rawArgs, pluginFlags);
  const log = logConfig(flags);
  const logger = createLogger(log);
  const local = localConfig(flags);
  const s3 = s3Config(flags);
  const metrics = new Metrics();
  logger.debug(`plugin: local cache ${local.cacheDir}${s3 ? `, bucket ${s3.bucket}` : ""}`);
  const cache = await openBuildCache({ local, s3, singleCommand: true }, { metrics, logger });
  const code = await servePluginStdio(cache.handler, { metrics, logger, tag: "plugin", summary: log.metrics });
  // Go's trim (at most daily), after the session: `go` has stopped waiting for us by then.
  cache.trim();
  return code;
}

// A plain object, not defineCommand(): plugin mode must not load citty
// (main.ts loads it only for help and the subcommands).
const pluginCommand: CommandDef<any> = {
  meta: { name: "gostash", description: "Serve the GOCACHEPROG protocol on stdin/stdout" },
  args: toCittyArgs(pluginFlags),
  run: ({ rawArgs }) => runPlugin(rawArgs),
};
export default pluginCommand;
