// `gostash connect PORT|SOCKET`: what `go` runs as GOCACHEPROG when a daemon
// (`gostash serve`) owns the caches:
//
//   GOCACHEPROG="gostash connect 5930" go build ./...
//
// It only copies bytes between `go` and the daemon (src/daemon/bridge.ts),
// so it starts in milliseconds and loads nothing heavy. If the daemon cannot
// be reached it says so once on stderr and serves the build itself from the
// local disk cache, so a stopped daemon never breaks a build.

import { defineCommand } from "citty";
import { writeSync } from "node:fs";
import { CAPABILITY_LINE } from "../cacheprog/protocol.ts";
import { rejectUnknownFlags, resolveFlags, toCittyArgs } from "../config/flags.ts";
import { connectFlags, localFlags, logFlags } from "../config/options.ts";
import { parseDuration } from "../config/units.ts";
import { formatPluginAddress, parsePluginAddress } from "../daemon/address.ts";
import { runBridge } from "../daemon/bridge.ts";

const flagSpecs = { ...logFlags, ...localFlags, ...connectFlags };

export default defineCommand({
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
  async run({ args, rawArgs }) {
    rejectUnknownFlags(rawArgs, flagSpecs, 1);
    const flags = resolveFlags(flagSpecs, args);
    const where = typeof args.address === "string" && args.address ? args.address : flags.plugin;
    if (typeof where !== "string" || !where) {
      throw new Error("config: connect needs the daemon's address: gostash connect PORT|SOCKET (or GOCACHE_PLUGIN)");
    }
    const addr = parsePluginAddress(where, "connect");
    const dialMs = typeof flags["dial-timeout"] === "string" ? parseDuration(flags["dial-timeout"], "--dial-timeout") : 2000;

    const res = await runBridge(addr, dialMs);
    if (res.kind === "done") return res.code;

    // The daemon is not there: serve this build in-process from the local disk.
    writeSync(1, CAPABILITY_LINE);
    const [{ localConfig }, { createDiskStore }, { createLocalCache }, { serveStdio }, { Metrics }, { createLogger }] =
      await Promise.all([
        import("../config/config.ts"),
        import("../store/disk.ts"),
        import("../store/local-cache.ts"),
        import("../cacheprog/stdio.ts"),
        import("../util/metrics.ts"),
        import("../util/log.ts"),
      ]);
    const logger = createLogger({ verbose: flags.verbose === true, debug: flags.debug === true });
    const local = localConfig(flags);
    process.stderr.write(
      `gostash connect: cannot reach the daemon at ${formatPluginAddress(addr)} (${res.error.message}); serving this build from the local cache ${local.cacheDir}\n`,
    );
    const metrics = new Metrics();
    const disk = createDiskStore({ dir: local.cacheDir, maxSize: local.maxSize, expiryMs: local.expiryMs });
    const out = await serveStdio(createLocalCache(disk, metrics), {
      onError(err, req) {
        metrics.inc("errors");
        logger.warn(`connect: ${req.command} ${req.id}: ${(err as Error)?.message ?? err}`);
      },
    });
    if (flags.metrics) (await import("../util/summary.ts")).printSummary(metrics);
    if (out.reason === "framing") {
      process.stderr.write(`gostash: ${out.error!.message}; stopping\n`);
      return 1;
    }
    return 0;
  },
});
