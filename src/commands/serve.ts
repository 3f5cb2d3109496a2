// `gostash serve --plugin=PORT|SOCKET [--http=ADDR]`: the daemon. One
// long-lived process owns the local store, the S3 client and its upload
// queue, and the metrics; each `go` command attaches through `gostash
// connect`. `gostash serve --http=ADDR --modproxy` without --plugin runs a
// module proxy alone, with no build cache. This file wires settings, stores and servers together; each
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
import { checkCacheDir } from "../cli/cache-dir.ts";
import { StartupError } from "../cli/errors.ts";
import { limitsConfig, localConfig, logConfig, s3Config, type LimitsConfig, type LocalConfig, type S3Config } from "../config/config.ts";
import { serveConfig, type ServeConfig } from "../config/daemon.ts";
import { ConfigError } from "../config/error.ts";
import { readFlags, toCittyArgs, type Flags } from "../config/flags.ts";
import { limitFlags, localFlags, logFlags, modproxyFlags, s3Flags, serveFlags } from "../config/options.ts";
import { formatPluginAddress, type PluginAddress } from "../daemon/address.ts";
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
  /** Both null for a module proxy alone (no --plugin). */
  cache: BuildCache | null;
  plugin: PluginServer | null;
  http: HttpListener | null;
  modProxy: ModProxy | null;
  client: S3Client | null;
  s3: S3Config | null;
}

export default defineCommand({
  meta: {
    name: "serve",
    description:
      "Run the daemon: the build cache for `gostash connect` on a local socket (--plugin), metrics and the module proxy over HTTP (--http, --modproxy)",
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
    checkDirs(flags, { buildCache: cfg.plugin ? local.cacheDir : null, modproxy: modproxy?.dir ?? null });
    const tokens = new TokenChecker({ token: cfg.token, readToken: cfg.readToken });
    const metrics = new Metrics();
    // No --plugin (allowed with --modproxy alone, daemon.ts): no build cache at all.
    const build = cfg.plugin ? await startBuildCache(cfg.plugin, { local, s3, limits, tokens, metrics, logger }) : null;

    let shuttingDown = false;
    const router = createHttpRouter({
      metrics,
      unhealthy: () => (shuttingDown ? "shutting down" : null),
      info: () => ({ plugin: build ? formatPluginAddress(build.plugin.address) : null, cache_dir: local.cacheDir, bucket: s3?.bucket ?? null }),
    });
    const modProxy = modproxy ? (await import("../modproxy/mount.ts")).mountModProxy(router, { ...modproxy, metrics, logger, s3 }) : null;
    let http: HttpListener | null = null;
    try {
      http = cfg.http ? listenHttp(limitHttp(requireHttpAuth(tokens, router.fetch, (why) => metrics.inc(`http_${why}`)), { maxInFlight: limits.maxHttpRequests, maxBody: limits.maxHttpBody, metrics, logger }), httpOptions(cfg, limits)) : null;
    } catch (err) {
      build?.plugin.stopAccepting();
      throw startupFailure(err);
    }
    // One line on stderr so scripts (and tests) learn the real addresses.
    process.stderr.write(
      `gostash serve: ${build ? `plugin on ${formatPluginAddress(build.plugin.address)}` : "module proxy only (no --plugin)"}` +
        (http ? `, http on ${listenerURL(http, cfg.tls !== null)}` : "") +
        (build ? `, cache ${local.cacheDir}` : `, store ${modproxy!.dir}`) +
        (s3 ? `, bucket ${s3.bucket}` : "") +
        (tokens.required ? ", token required" : "") +
        "\n",
    );
    const d: Daemon = { cache: build?.cache ?? null, plugin: build?.plugin ?? null, http, modProxy, client: build?.client ?? null, s3 };
    const trimTimer = setInterval(() => d.cache?.trim(), TRIM_EVERY_MS);
    trimTimer.unref?.();
    const sig = await signalled(() => (shuttingDown = true));
    clearInterval(trimTimer);
    const left = await shutDown(d, sig, cfg.shutdownMs, logger);
    if (log.metrics) printSummary(metrics);
    process.stderr.write(`gostash serve: stopped (${sig}${left ? `, ${left} upload(s) left` : ""})\n`);
    return 0;
  },
});

/**
 * The directories the daemon writes to, usable before it listens anywhere
 * (cli/cache-dir.ts): the build cache with --plugin, the module store with
 * --modproxy.
 */
function checkDirs(flags: Flags, dirs: { buildCache: string | null; modproxy: string | null }): void {
  if (dirs.buildCache) checkCacheDir(dirs.buildCache, flags.source("cache-dir"));
  if (dirs.modproxy) checkCacheDir(dirs.modproxy, flags.source(flags.given("modproxy-dir") ? "modproxy-dir" : "cache-dir"), "the module proxy's store");
}

/**
 * A listen or bind failure, as one line with exit status 1: not a config
 * error. (daemon/server.ts still prefixes its listen failures "config:".)
 */
function startupFailure(err: unknown): StartupError {
  const message = ((err as Error)?.message ?? String(err)).replace(/^config: /, "");
  return new StartupError(`serve: ${message}`, { cause: err });
}

interface BuildCacheParts {
  local: LocalConfig;
  s3: S3Config | null;
  limits: LimitsConfig;
  tokens: TokenChecker;
  metrics: Metrics;
  logger: Logger;
}

/** The shared build cache and the plugin socket `gostash connect` reaches it on. */
async function startBuildCache(address: PluginAddress, o: BuildCacheParts): Promise<{ cache: BuildCache; plugin: PluginServer; client: S3Client | null }> {
  const { metrics, logger, limits } = o;
  const client = o.s3 ? (await import("../s3/client.ts")).createS3Client(o.s3, { metrics, logger }) : null;
  const cache = await openBuildCache({ local: o.local, s3: o.s3 }, { metrics, logger, client });
  try {
    const plugin = await startPluginServer({
      address,
      handler: cache.connection("rw", 0),
      metrics,
      logger,
      tokens: o.tokens,
      readOnlyHandler: (id) => cache.connection("ro", id),
      limits: { maxConnections: limits.maxConnections, maxInflight: limits.maxInflight, idleTimeoutMs: limits.idleTimeoutMs },
    });
    return { cache, plugin, client };
  } catch (err) {
    client?.close();
    throw startupFailure(err);
  }
}

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
  if (d.plugin) await closePlugin(d.plugin, sig, shutdownMs, logger);
  const flushMs = d.s3?.flushTimeoutMs ?? 30_000;
  let left = 0;
  try {
    left = d.cache ? (await d.cache.flush(flushMs)).left : 0;
  } catch (err) {
    logger.warn(`serve: flush: ${(err as Error).message}`);
  }
  if (left) logger.warn(`serve: ${left} upload(s) still pending after ${flushMs}ms; giving up on them`);
  // Module files still being mirrored to the bucket.
  if (d.modProxy?.mirror) left += await d.modProxy.mirror.flush(flushMs);
  d.cache?.trim();
  d.http?.stop(true);
  d.client?.close();
  return left;
}

/** Lets connected go commands finish, up to shutdownMs, then closes them. */
async function closePlugin(plugin: PluginServer, sig: string, shutdownMs: number, logger: Logger): Promise<void> {
  plugin.stopAccepting();
  logger.info(`serve: ${sig}: stopped accepting; waiting for ${plugin.connections} connection(s)`);
  if (!(await plugin.idle(shutdownMs))) {
    logger.warn(`serve: ${plugin.connections} connection(s) still open after ${shutdownMs}ms; closing them`);
    plugin.closeAll();
    await plugin.idle(1000);
  }
}
