// Direct plugin mode: `GOCACHEPROG=gostash [flags]`. cli.ts has already
// checked the flags and the cache directory and printed the capability
// line; this opens the build cache and serves the stdio session, then trims
// once the go command has its answers.

import type { CommandDef } from "citty";
import type { CacheHandler } from "../cacheprog/session.ts";
import { withRequestLog } from "../cacheprog/request-log.ts";
import { serveStdio } from "../cacheprog/stdio.ts";
import { openBuildCache } from "../buildcache/open.ts";
import { toolchainOf } from "../store/toolchain-marks.ts";
import { RunRecorder } from "../ci/record.ts";
import { localConfig, logConfig, s3Config } from "../config/config.ts";
import { toCittyArgs, type Flags } from "../config/flags.ts";
import { checkPluginArgs, pluginFlagSpecs } from "../cli/start.ts";
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

/** Plugin mode from its checked flags (cli/start.ts; main.ts calls it without citty's parser). */
export async function runPlugin(flags: Flags): Promise<number> {
  const log = logConfig(flags);
  const logger = createLogger(log);
  const local = localConfig(flags);
  const s3 = s3Config(flags);
  const metrics = new Metrics();
  logger.debug(`plugin: local cache ${local.cacheDir}${s3 ? `, bucket ${s3.bucket}` : ""}`);
  // The go command says which toolchain it is in the environment it starts us with.
  const toolchain = s3?.toolchainMarks === false ? null : toolchainOf(process.env);
  const cache = await openBuildCache({ local, s3, singleCommand: true, toolchain }, { metrics, logger });
  const run = new RunRecorder("plugin");
  run.attach(cache.tracker);
  const code = await servePluginStdio(withRequestLog(cache.handler), { metrics, logger, tag: "plugin", summary: log.metrics });
  // Go's trim (at most daily), after the session: `go` has stopped waiting for us by then.
  cache.trim();
  // This go command's record for `gostash ci summary` (src/ci/runlog.ts), likewise after the session.
  run.finish(local.cacheDir, s3 ? metrics : null);
  return code;
}

// A plain object, not defineCommand(): plugin mode must not load citty
// (main.ts loads it only for help and the subcommands).
const pluginCommand: CommandDef<any> = {
  meta: { name: "gostash", description: "Serve the GOCACHEPROG protocol on stdin/stdout" },
  args: toCittyArgs(pluginFlagSpecs),
  run: ({ rawArgs }) => runPlugin(checkPluginArgs(rawArgs)),
};
export default pluginCommand;
