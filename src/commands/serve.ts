// `gostash serve --plugin=PORT|SOCKET [--http=ADDR]`: the daemon. One
// long-lived process owns the local store, the S3 client and its upload
// queue, and the metrics; each `go` command attaches through `gostash
// connect`. `gostash serve --http=ADDR --modproxy` without --plugin runs a
// module proxy alone, with no build cache. This file wires settings, stores
// and servers together; each part lives in its own module:
//
//   build cache       src/buildcache/open.ts   (local disk + S3 tier)
//   plugin socket     src/daemon/server.ts     (limits: --max-connections, --max-inflight, --idle-timeout)
//   HTTP              src/http/                (/metrics, /debug/vars, /healthz; limits: --max-http-*)
//   status page       src/http/status/         (/ and /status.json; wired in serve-status.ts)
//   module proxy      src/modproxy/            (/mod, with --modproxy)
//   reverse proxy     src/revproxy/            (--http as an HTTP proxy, with --revproxy)
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
import { serveRunJournal } from "../ci/journal.ts";
import { withRequestLog } from "../cacheprog/request-log.ts";
import { checkCacheDir } from "../cli/cache-dir.ts";
import { StartupError } from "../cli/errors.ts";
import { limitsConfig, localConfig, logConfig, s3Config, type LimitsConfig, type LocalConfig, type S3Config } from "../config/config.ts";
import { serveConfig, type ServeConfig } from "../config/daemon.ts";
import { ConfigError } from "../config/error.ts";
import { readFlags, toCittyArgs, type Flags } from "../config/flags.ts";
import { limitFlags, localFlags, logFlags, modproxyFlags, revproxyFlags, s3Flags, serveFlags } from "../config/options.ts";
import { revproxyConfig } from "../config/revproxy.ts";
import { formatPluginAddress, type PluginAddress } from "../daemon/address.ts";
import type { ClientHello } from "../daemon/hello.ts";
import { startPluginServer, type PluginServer } from "../daemon/server.ts";
import { writeDiskMark, type DiskMark } from "../daemon/disk-mark.ts";
import { createHttpRouter } from "../http/handler.ts";
import { limitHttp } from "../http/limits.ts";
import { listenHttp, listenerURL, type HttpListener } from "../http/listen.ts";
import { logHttpRequests } from "../http/request-log.ts";
import type { HttpHandler, Router } from "../http/router.ts";
import { modproxyConfig } from "../modproxy/config.ts";
import type { ModProxy } from "../modproxy/serve/proxy.ts";
import type { RevProxy } from "../revproxy/open.ts";
import type { S3Client } from "../s3/client.ts";
import { toolchainOf } from "../store/toolchain-marks.ts";
import { createLogger, DEBUG_MODPROXY, requestLog, type Logger } from "../util/log.ts";
import { Metrics } from "../util/metrics.ts";
import { printSummary } from "../util/summary.ts";
import { daemonStatus } from "./serve-status.ts";

const flagSpecs = { ...logFlags, ...localFlags, ...s3Flags, ...serveFlags, ...limitFlags, ...modproxyFlags, ...revproxyFlags };

/** How often the daemon runs the (cheap unless due) local trim. */
const TRIM_EVERY_MS = 3600_000;

interface Daemon {
  /** Both null for a module proxy alone (no --plugin). */
  cache: BuildCache | null;
  plugin: PluginServer | null;
  http: HttpListener | null;
  modProxy: ModProxy | null;
  revProxy: RevProxy | null;
  client: S3Client | null;
  s3: S3Config | null;
}

/** What every part of the daemon shares. */
interface Shared {
  limits: LimitsConfig;
  tokens: TokenChecker;
  metrics: Metrics;
  logger: Logger;
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
    const revproxy = revproxyConfig(flags, local);
    if (modproxy && !cfg.http) throw new ConfigError("--modproxy needs --http=ADDR (the proxy is served at /mod)");
    if (revproxy && !cfg.http) throw new ConfigError(`${flags.source("revproxy")} needs --http=ADDR (the proxy is served there: HTTPS_PROXY=http://ADDR)`);
    checkDirs(flags, { buildCache: cfg.plugin ? local.cacheDir : null, modproxy: modproxy?.dir ?? null });
    const sh: Shared = { limits: limitsConfig(flags), tokens: new TokenChecker({ token: cfg.token, readToken: cfg.readToken }), metrics: new Metrics(), logger };
    const client = s3 ? (await import("../s3/client.ts")).createS3Client(s3, { metrics: sh.metrics, logger }) : null;
    // No --plugin (allowed with --modproxy alone, daemon.ts): no build cache at all.
    const build = cfg.plugin ? await startBuildCache(cfg.plugin, local, s3, client, sh) : null;

    let shuttingDown = false;
    let revProxy: RevProxy | null = null;
    const router = createHttpRouter({
      metrics: sh.metrics,
      unhealthy: () => (shuttingDown ? "shutting down" : null),
      info: () => ({ plugin: build ? formatPluginAddress(build.plugin.address) : null, cache_dir: local.cacheDir, bucket: s3?.bucket ?? null, ...revProxy?.info() }),
    });
    const status = daemonStatus(sh.metrics, logger);
    if (build) serveRunJournal(router, build.cache.tracker, sh.metrics); // GET /debug/runs, for `gostash ci summary`
    const modProxy = modproxy ? (await import("../modproxy/serve/mount.ts")).mountModProxy(router, { ...modproxy, metrics: sh.metrics, logger, bucket: client && { client, readOnly: s3!.readOnly }, onModuleRequest: status.moduleRequested }) : null;
    status.mount(router, { build, client, s3, cacheDir: local.cacheDir, modproxy: modProxy !== null, specs: flagSpecs, flags });
    let http: HttpListener | null = null;
    try {
      revProxy = revproxy ? (await import("../revproxy/open.ts")).openRevProxy(revproxy, { metrics: sh.metrics, logger, client, readOnly: s3?.readOnly ?? false, tokens: sh.tokens }) : null;
      http = cfg.http ? await listen(router, revProxy, cfg, sh) : null;
    } catch (err) {
      build?.plugin.stopAccepting();
      throw startupFailure(err);
    }
    // Signals are handled from before the start-up line: whoever reads it may stop the daemon at once.
    const signal = signalled(() => (shuttingDown = true));
    // One line on stderr so scripts (and tests) learn the real addresses.
    process.stderr.write(
      `gostash serve: ${build ? `plugin on ${formatPluginAddress(build.plugin.address)}` : "module proxy only (no --plugin)"}` +
        (http ? `, http on ${listenerURL(http, cfg.tls !== null)}` : "") +
        (build ? `, cache ${local.cacheDir}` : `, store ${modproxy!.dir}`) +
        (s3 ? `, bucket ${s3.bucket}` : "") +
        (revproxy && revProxy ? `, reverse proxy for ${revproxy.targets} (CA ${revProxy.ca.certPath})` : "") +
        (sh.tokens.required ? ", token required" : "") +
        "\n",
    );
    const d: Daemon = { cache: build?.cache ?? null, plugin: build?.plugin ?? null, http, modProxy, revProxy, client, s3 };
    const trimTimer = setInterval(() => trimAll(d), TRIM_EVERY_MS);
    trimTimer.unref?.();
    const sig = await signal;
    clearInterval(trimTimer);
    const left = await shutDown(d, sig, cfg.shutdownMs, logger);
    if (log.metrics) printSummary(sh.metrics);
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

/** A listen or bind failure, as one line with exit status 1: not a config error. */
function startupFailure(err: unknown): StartupError {
  if (err instanceof StartupError) return err;
  const message = ((err as Error)?.message ?? String(err)).replace(/^config: /, "");
  return new StartupError(`serve: ${message}`, { cause: err });
}

/** The shared build cache and the plugin socket `gostash connect` reaches it on. */
async function startBuildCache(
  address: PluginAddress,
  local: LocalConfig,
  s3: S3Config | null,
  client: S3Client | null,
  sh: Shared,
): Promise<{ cache: BuildCache; plugin: PluginServer }> {
  const { metrics, logger, limits } = sh;
  const cache = await openBuildCache({ local, s3 }, { metrics, logger, client });
  // A connection's hello (daemon/hello.ts) says its go command's toolchain, for marks, and its line, for the status page.
  const marks = s3 !== null && s3.toolchainMarks !== false;
  const clientOf = (c: ClientHello) => ({ toolchain: marks ? toolchainOf(c.goEnv) : null, command: c.command });
  try {
    const plugin = await startPluginServer({
      address,
      handler: withRequestLog(cache.connection("rw", 0)),
      metrics,
      logger,
      tokens: sh.tokens,
      connectionHandler: (access, id, client) => withRequestLog(cache.connection(access, id, clientOf(client))),
      hello: true,
      disk: diskMark(cache.disk.dir, logger),
      limits: { maxConnections: limits.maxConnections, maxInflight: limits.maxInflight, idleTimeoutMs: limits.idleTimeoutMs },
    });
    return { cache, plugin };
  } catch (err) {
    client?.close();
    throw startupFailure(err);
  }
}

/** Marks the build cache's directory, so bridges that see it answer local hits themselves (daemon/disk-mark.ts); null if it cannot. */
function diskMark(dir: string, logger: Logger): DiskMark | null {
  try {
    return writeDiskMark(dir);
  } catch (err) {
    logger.info(`serve: no disk mark in ${dir} (${(err as Error).message}): every get goes through the socket`);
    return null;
  }
}

/** The --http listener: the router behind tokens and limits, with the reverse proxy's front when it is on. */
async function listen(router: Router, revProxy: RevProxy | null, cfg: ServeConfig, sh: Shared): Promise<HttpListener> {
  const { limits, metrics, logger } = sh;
  const limit = (h: HttpHandler, gauge?: string) => limitHttp(h, { maxInFlight: limits.maxHttpRequests, maxBody: limits.maxHttpBody, metrics, logger, gauge });
  const modLog = requestLog(DEBUG_MODPROXY, "modproxy");
  const routed = modLog ? logHttpRequests(router.fetch, modLog, (p) => p === "/mod" || p.startsWith("/mod/")) : router.fetch;
  const direct = limit(requireHttpAuth(sh.tokens, routed, (why) => metrics.inc(`http_${why}`)));
  if (!revProxy) return listenHttp(direct, httpOptions(cfg, limits));
  const { listenWithReverseProxy } = await import("../revproxy/listener.ts");
  return listenWithReverseProxy(direct, revProxy.handler, { ...httpOptions(cfg, limits), identity: revProxy.identity, front: revProxy.front, limit: (h) => limit(h, "revproxy_in_flight") });
}

function httpOptions(cfg: ServeConfig, limits: LimitsConfig) {
  return { hostname: cfg.http!.hostname, port: cfg.http!.port, idleTimeoutSec: limits.httpIdleTimeoutSec, maxBody: limits.maxHttpBody, tls: cfg.tls };
}

function trimAll(d: Daemon): void {
  d.cache?.trim();
  d.revProxy?.trim();
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
  // Module files still being mirrored to the bucket (the same upload queue; a module proxy alone has only these).
  if (d.modProxy?.mirror) left += await d.modProxy.mirror.flush(flushMs);
  trimAll(d);
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
