// `gostash connect PORT|SOCKET`: what `go` runs as GOCACHEPROG when a daemon
// (`gostash serve`) owns the caches:
//
//   GOCACHEPROG="gostash connect 5930" go build ./...
//
// It only copies bytes between `go` and the daemon (src/daemon/bridge.ts),
// so it starts in milliseconds and loads nothing heavy. If the daemon cannot
// be reached it says so once on stderr and serves the build itself from the
// local disk cache; if the daemon goes away mid-build, the bridge takes the
// rest of the build over the same way (see bridge.ts). A stopped daemon never
// breaks a build.

import type { CommandDef } from "citty";
import { parseFlagArgs, rejectUnknownFlags, resolveFlags, toCittyArgs } from "../config/flags.ts";
import { connectFlags, localFlags, logFlags } from "../config/options.ts";
import { parseDuration } from "../config/units.ts";
import { formatPluginAddress, parsePluginAddress } from "../daemon/address.ts";
import { runBridge } from "../daemon/bridge.ts";
import { createLogger } from "../util/log.ts";
import { Metrics } from "../util/metrics.ts";
import { printSummary } from "../util/summary.ts";
import { writeStderr } from "../util/std-output.ts";

const flagSpecs = { ...logFlags, ...localFlags, ...connectFlags };

// A plain object, not defineCommand(): connect must not load citty.
const connectCommand: CommandDef<any> = {
  meta: {
    name: "connect",
    description: "Bridge a go command (as GOCACHEPROG) to a gostash daemon; falls back to the local cache if it is down",
  },
  args: {
    address: {
      type: "positional",
      required: false,
      valueHint: "port|socket",
      description: "Daemon address: a port on 127.0.0.1, host:port, or a Unix socket path [default: --plugin / GOCACHE_PLUGIN]",
    },
    ...toCittyArgs(flagSpecs),
  },
  run: ({ rawArgs }) => runConnect(rawArgs),
};
export default connectCommand;

/**
 * `connect` from its raw arguments (main.ts calls it without citty's
 * parser, as for plugin mode: `go` waits for the first answer).
 */
export async function runConnect(rawArgs: string[]): Promise<number> {
  rejectUnknownFlags(rawArgs, flagSpecs, 1);
  const flags = resolveFlags(flagSpecs, parseFlagArgs(rawArgs, flagSpecs));
  const end = rawArgs.indexOf("--");
  const address = (end < 0 ? rawArgs : rawArgs.slice(0, end)).find((a) => !a.startsWith("-") || a === "-");
  const where = address ? address : flags.plugin;
  if (typeof where !== "string" || !where) {
    throw new Error("config: connect needs the daemon's address: gostash connect PORT|SOCKET (or GOCACHE_PLUGIN)");
  }
  const addr = parsePluginAddress(where, "connect");
  const dialMs = typeof flags["dial-timeout"] === "string" ? parseDuration(flags["dial-timeout"], "--dial-timeout") : 2000;

  const logger = createLogger({ verbose: flags.verbose === true, debug: flags.debug === true });
  const metrics = new Metrics();
  // The local disk cache, for when the daemon is unreachable or goes away.
  let localDisk: { trim(): unknown } | null = null;
  const openLocal = async () => {
    const [{ localConfig }, { openLocalStore }, { createLocalCache }] = await Promise.all([
      import("../config/config.ts"),
      import("../store/open-local.ts"),
      import("../store/local-cache.ts"),
    ]);
    const local = localConfig(flags);
    const disk = openLocalStore(local, metrics, logger);
    localDisk = disk;
    return { handler: createLocalCache(disk, metrics), where: local.cacheDir };
  };

  // cli.ts has printed the capability line already (as in direct mode).
  const token = typeof flags.token === "string" && flags.token ? flags.token : null;
  const res = await runBridge(addr, { dialTimeoutMs: dialMs, capabilityPrinted: true, openLocal, token });
  if (res.kind === "done") {
    if (flags.metrics && metrics.get("gets") + metrics.get("puts") > 0) printSummary(metrics);
    // The bridge took over from the local cache at some point: trim it as direct mode does.
    if (localDisk) (await import("./plugin.ts")).trimQuietly(localDisk, logger);
    return res.code;
  }

  // The daemon is not there: serve this build in-process from the local disk.
  const { handler, where: dir } = await openLocal();
  writeStderr(
    `gostash connect: cannot reach the daemon at ${formatPluginAddress(addr)} (${res.error.message}); serving this build from the local cache ${dir}\n`,
  );
  const { servePluginStdio, trimQuietly } = await import("./plugin.ts");
  const code = await servePluginStdio(handler, { metrics, logger, tag: "connect", summary: flags.metrics === true });
  if (localDisk) trimQuietly(localDisk, logger);
  return code;
}
