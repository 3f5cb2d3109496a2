// `gostash serve --plugin=PORT|SOCKET [--http=ADDR]`: the daemon. One
// long-lived process owns the local store, the S3 client and its upload
// queue, and the metrics; each `go` command attaches through `gostash
// connect`. This file wires settings, stores and servers together; each
// part lives in its own module:
//
//   build cache       src/buildcache/open.ts   (local disk + S3 tier)
//   plugin socket     src/daemon/server.ts     (limits: --max-connections, --max-inflight, --idle-timeout)
//   HTTP              src/http/                (/metrics, /debug/vars, /healthz; limits: --max-http-*)
//   module proxy      src/modproxy/            (/mod, with --modproxy)
//   access control    src/auth/token.ts        (--token, --read-token)
//
// Shutdown (SIGINT/SIGTERM): stop accepting, let connected go commands
// finish (up to --shutdown-timeout, then cut them), flush pending uploads
// (up to --flush-timeout), trim the local cache, exit 0. A second signal
// exits at once with status 1.

import { writeSync } from "node:fs";
import { defineCommand } from "citty";
import { requireHttpAuth, TokenChecker } from "../auth/token.ts";
import { openBuildCache, type BuildCache } from "../buildcache/open.ts";
import { limitsConfig, localConfig, logConfig, s3Config, type LimitsConfig, type S3Config } from "../config/config.ts";
import { serveConfig, type ServeConfig } from "../config/daemon.ts";
import { ConfigError } from "../config/error.ts";
import { readFlags, toCittyArgs } from "../config/flags.ts";
import { limitFlags, localFlags, logFlags, modproxyFlags, s3Flags, serveFlags } from "../config/options.ts";
import { formatPluginAddress } from "../daemon/address.ts";
import { startPluginServer, type PluginServer } from "../daemon/server.ts";
import { createHttpRouter } from "../http/handler.ts";
import { limitHttp } from "../http/limits.ts";
import { listenHttp, listenerURL, type HttpListener } from "../http/listen.ts";
import { modproxyConfig } from "../modproxy/config.ts";
import type { ModProxy } from "../modproxy/handler.ts";
import type { S3Client } from "../s3/client.ts";
import { createLogger, type Logger } from "../util/log.ts";
import { Metrics } from "../util/metrics.ts";
import { printSummary } from "../util/summary.ts";

const flagSpecs = { ...logFlags, ...localFlags, ...s3Flags, ...serveFlags, ...limitFlags, ...modproxyFlags };

/** How often the daemon runs the (cheap unless due) local trim. */
const TRIM_EVERY_MS = 3600_000;

interface Daemon {
  cache: BuildCache;
  plugin: PluginServer;
  http: HttpListener | null;
  modProxy: ModProxy | null;
  client: S3Client | null;
  s3: S3Config | null;
}

export default defineCommand({
  meta: {
    name: "serve",
    description: "Run the cache daemon: GOCACHEPROG over a local socket for `gostash connect`, metrics over HTTP",
  },
  args: toCittyArgs(flagSpecs),
  async run({ rawArgs }) {
    const flags = readFlags(rawArgs, flagSpecs);
    const log = logConfig(flags);
    const logger = createLogger(log);
    const cfg = serveConfig(flags);
    const local = localConfig(flags);
    const s3 = s3Config(flags);
    const modproxy = modproxyConfig(flags, local.cacheDir);
    const limits = limitsConfig(flags);
    if (modproxy && !cfg.http) throw new ConfigError("--modproxy needs --http=ADDR (the proxy is served at /mod)");
    const tokens = new TokenChecker({ token: cfg.token, readToken: cfg.readToken });
    const metrics = new Metrics();
    const client = s3 ? (await import("../s3/client.ts")).createS3Client(s3, { metrics, logger }) : null;
    const cache = await openBuildCache({ local, s3 }, { metrics, logger, client });

    let shuttingDown = false;
    const plugin = await startPluginServer({
      address: cfg.plugin!,
      handler: cache.connection("rw", 0),
      metrics,
      logger,
      tokens,
      readOnlyHandler: (id) => cache.connection("ro", id),
      connectionHandler: (access, id) => cache.connection(access, id),
      limits: { maxConnections: limits.maxConnections, maxInflight: limits.maxInflight, idleTimeoutMs: limits.idleTimeoutMs },
    });
    const router = createHttpRouter({
      metrics,
      unhealthy: () => (shuttingDown ? "shutting down" : null),
      info: () => ({ plugin: formatPluginAddress(plugin.address), cache_dir: local.cacheDir, bucket: s3?.bucket ?? null }),
    });
    const modProxy = modproxy ? (await import("../modproxy/mount.ts")).mountModProxy(router, { ...modproxy, metrics, logger, s3 }) : null;
    let http: HttpListener | null = null;
    try {
      http = cfg.http ? listenHttp(limitHttp(requireHttpAuth(tokens, router.fetch, (why) => metrics.inc(`http_${why}`)), { maxInFlight: limits.maxHttpRequests, maxBody: limits.maxHttpBody, metrics, logger }), httpOptions(cfg, limits)) : null;
    } catch (err) {
      plugin.stopAccepting();
      throw err;
    }
    // One line on stderr so scripts (and tests) learn the real addresses.
    process.stderr.write(
      `gostash serve: plugin on ${formatPluginAddress(plugin.address)}` +
        (http ? `, http on ${listenerURL(http, cfg.tls !== null)}` : "") +
        `, cache ${local.cacheDir}${s3 ? `, bucket ${s3.bucket}` : ""}` +
        (tokens.required ? ", token required" : "") +
        "\n",
    );
    const d: Daemon = { cache, plugin, http, modProxy, client, s3 };
    const trimTimer = setInterval(() => cache.trim(), TRIM_EVERY_MS);
    trimTimer.unref?.();
    const sig = await signalled(() => (shuttingDown = true));
    clearInterval(trimTimer);
    const left = await shutDown(d, sig, cfg.shutdownMs, logger);
    if (log.metrics) printSummary(metrics);
    process.stderr.write(`gostash serve: stopped (${sig}${left ? `, ${left} upload(s) left` : ""})\n`);
    return 0;
  },
});

function httpOptions(cfg: ServeConfig, limits: LimitsConfig) {
  return { hostname: cfg.http!.hostname, port: cfg.http!.port, idleTimeoutSec: limits.httpIdleTimeoutSec, maxBody: limits.maxHttpBody, tls: cfg.tls };
}

/** Resolves with the first SIGINT/SIGTERM; a second one exits at once. */
function signalled(onFirst: () => void): Promise<string> {
  let first = true;
  return new Promise<string>((resolve) => {
    const onSignal = (sig: string) => {
      if (!first) {
        // synchronous: process.exit would drop a buffered stderr write
        writeSync(2, `gostash serve: second ${sig}, exiting now\n`);
        process.exit(1);
      }
      first = false;
      onFirst();
      resolve(sig);
    };
    process.on("SIGINT", () => onSignal("SIGINT"));
    process.on("SIGTERM", () => onSignal("SIGTERM"));
  });
}

/** Stops accepting, waits for connected go commands, flushes uploads, trims. Returns the uploads left. */
async function shutDown(d: Daemon, sig: string, shutdownMs: number, logger: Logger): Promise<number> {
  d.plugin.stopAccepting();
  logger.info(`serve: ${sig}: stopped accepting; waiting for ${d.plugin.connections} connection(s)`);
  if (!(await d.plugin.idle(shutdownMs))) {
    logger.warn(`serve: ${d.plugin.connections} connection(s) still open after ${shutdownMs}ms; closing them`);
    d.plugin.closeAll();
    await d.plugin.idle(1000);
  }
  const flushMs = d.s3?.flushTimeoutMs ?? 30_000;
  let left = 0;
  try {
    left = (await d.cache.flush(flushMs)).left;
  } catch (err) {
    logger.warn(`serve: flush: ${(err as Error).message}`);
  }
  if (left) logger.warn(`serve: ${left} upload(s) still pending after ${flushMs}ms; giving up on them`);
  // Module files still being mirrored to the bucket.
  if (d.modProxy?.mirror) left += await d.modProxy.mirror.flush(flushMs);
  d.cache.trim();
  d.http?.stop(true);
  d.client?.close();
  return left;
}
