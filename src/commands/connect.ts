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
import type { BuildCache } from "../buildcache/open.ts";
import { withRequestLog } from "../cacheprog/request-log.ts";
import { RunRecorder } from "../ci/record.ts";
import { checkConnectArgs, connectFlagSpecs } from "../cli/start.ts";
import type { ConnectConfig } from "../config/daemon.ts";
import { toCittyArgs, type Flags } from "../config/flags.ts";
import { formatPluginAddress } from "../daemon/address.ts";
import { runBridge } from "../daemon/bridge.ts";
import { LocalHits } from "../daemon/bridge/local-hits.ts";
import { seesDisk, type DiskMark } from "../daemon/disk-mark.ts";
import { createDiskStore } from "../store/disk.ts";
import { helloLine } from "../daemon/hello.ts";
import { createLogger, type Logger } from "../util/log.ts";
import { Metrics } from "../util/metrics.ts";
import { printSummary } from "../util/summary.ts";
import { writeStderr } from "../util/std-output.ts";

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
    ...toCittyArgs(connectFlagSpecs),
  },
  run: ({ rawArgs }) => {
    const { flags, config } = checkConnectArgs(rawArgs);
    return runConnect(flags, config);
  },
};
export default connectCommand;

/** The local build cache, opened only when the daemon cannot serve this build. */
function localFallback(flags: Flags, metrics: Metrics, logger: Logger): () => Promise<BuildCache> {
  let opened: Promise<BuildCache> | null = null;
  return () =>
    (opened ??= (async () => {
      const [{ localConfig }, { openBuildCache }] = await Promise.all([import("../config/config.ts"), import("../buildcache/open.ts")]);
      return openBuildCache({ local: localConfig(flags), s3: null }, { metrics, logger });
    })());
}

/** The daemon's build cache, read here for local hits when this process sees it (daemon/disk-mark.ts). */
function daemonDisk(d: DiskMark): LocalHits | null {
  return seesDisk(d) ? new LocalHits(createDiskStore({ dir: d.dir })) : null;
}

/**
 * `connect` from its checked flags and address (cli/start.ts; main.ts calls
 * it without citty's parser, as for plugin mode: `go` waits for the first
 * answer).
 */
export async function runConnect(flags: Flags, cfg: ConnectConfig): Promise<number> {
  const logger = createLogger({ verbose: flags.bool("verbose"), debug: flags.mask("debug") });
  const metrics = new Metrics();
  const local = localFallback(flags, metrics, logger);
  // This go command's record for `gostash ci summary`: its line and time window (the daemon counts what it serves).
  const run = new RunRecorder("connect");
  let usedLocal = false;
  const openLocal = async () => {
    usedLocal = true;
    const cache = await local();
    run.attach(cache.tracker);
    return { handler: withRequestLog(cache.handler), where: cache.disk.dir };
  };

  // cli.ts has printed the capability line already (as in direct mode).
  // The go command says which toolchain it is in the environment it starts us with: the hello tells the daemon,
  // with the command line for its status page.
  const hello = helloLine(process.env, run.shownCommand);
  const res = await runBridge(cfg.address, {
    dialTimeoutMs: cfg.dialTimeoutMs,
    answerTimeoutMs: cfg.answerTimeoutMs,
    capabilityPrinted: true,
    openLocal,
    token: cfg.token,
    hello,
    localHits: cfg.localHits ? daemonDisk : undefined,
  });
  if (res.kind === "done") {
    if (flags.bool("metrics") && res.localHits > 0) writeStderr(`gostash connect: ${res.localHits} hit(s) answered here from the daemon's disk\n`);
    if (flags.bool("metrics") && metrics.get("gets") + metrics.get("puts") > 0) printSummary(metrics);
    // The bridge took over from the local cache at some point: trim it as direct mode does.
    if (usedLocal) (await local()).trim();
    await recordRun(run, flags, formatPluginAddress(cfg.address));
    return res.code;
  }

  // The daemon is not there: serve this build in-process from the local disk.
  const { handler, where } = await openLocal();
  writeStderr(`gostash connect: cannot reach the daemon at ${formatPluginAddress(cfg.address)} (${res.error.message}); serving this build from the local cache ${where}\n`);
  const { servePluginStdio } = await import("./plugin.ts");
  const code = await servePluginStdio(handler, { metrics, logger, tag: "connect", summary: flags.bool("metrics") });
  (await local()).trim();
  await recordRun(run, flags, formatPluginAddress(cfg.address));
  return code;
}

/** Appends the run record to the run log of connect's cache directory (the daemon's, when both use the default). */
async function recordRun(run: RunRecorder, flags: Flags, daemon: string): Promise<void> {
  try {
    const { localConfig } = await import("../config/config.ts");
    run.finish(localConfig(flags).cacheDir, null, { daemon });
  } catch {
    // A report, never a reason to fail the go command.
  }
}
