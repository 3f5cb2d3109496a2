// `gostash serve --plugin=PORT|SOCKET [--http=ADDR]`: the daemon. One
// long-lived process owns the local store, the S3 client and upload queue,
// and the metrics; each `go` command attaches through `gostash connect`.
//
// Limits (--max-connections, --max-inflight, --idle-timeout on the plugin
// socket: src/daemon/server.ts; --max-http-requests, --max-http-body:
// src/http/limits.ts; --http-idle-timeout here) all have defaults, name
// their flag when they refuse something, and are counted in /metrics.
//
// Shutdown (SIGINT/SIGTERM): stop accepting, let connected go commands
// finish (up to --shutdown-timeout, then cut them), flush pending uploads
// (up to --flush-timeout), trim the local cache, exit 0. A second signal
// exits at once with status 1.

import { readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { defineCommand } from "citty";
import { createReadOnlyHandler, sweepScratch } from "../auth/readonly.ts";
import { requireHttpAuth, TokenChecker } from "../auth/token.ts";
import type { CacheHandler } from "../cacheprog/session.ts";
import { limitsConfig, localConfig, s3Config } from "../config/config.ts";
import { rejectUnknownFlags, resolveFlags, toCittyArgs } from "../config/flags.ts";
import { limitFlags, localFlags, logFlags, modproxyFlags, s3Flags, serveFlags } from "../config/options.ts";
import { parseDuration } from "../config/units.ts";
import { formatPluginAddress, parseHttpAddress, parsePluginAddress } from "../daemon/address.ts";
import { startPluginServer } from "../daemon/server.ts";
import { createHttpRouter } from "../http/handler.ts";
import { limitHttp } from "../http/limits.ts";
import { modproxyConfig } from "../modproxy/config.ts";
import { openLocalStore } from "../store/open-local.ts";
import { createLocalCache } from "../store/local-cache.ts";
import { createLogger } from "../util/log.ts";
import { Metrics } from "../util/metrics.ts";
import { printSummary } from "../util/summary.ts";

const flagSpecs = { ...logFlags, ...localFlags, ...s3Flags, ...serveFlags, ...limitFlags, ...modproxyFlags };

/** How often the daemon runs the (cheap unless due) local trim. */
const TRIM_EVERY_MS = 3600_000;

type Flushable = CacheHandler & { flush?: (timeoutMs: number) => Promise<{ left: number }> };

export default defineCommand({
  meta: {
    name: "serve",
    description: "Run the cache daemon: GOCACHEPROG over a local socket for `gostash connect`, metrics over HTTP",
  },
  args: toCittyArgs(flagSpecs),
  async run({ args, rawArgs }) {
    rejectUnknownFlags(rawArgs, flagSpecs);
    const flags = resolveFlags(flagSpecs, args);
    const logger = createLogger({ verbose: flags.verbose === true, debug: flags.debug === true });
    if (typeof flags.plugin !== "string" || !flags.plugin) {
      throw new Error("config: serve needs --plugin=PORT or --plugin=/path/to/socket (or GOCACHE_PLUGIN)");
    }
    const pluginAddr = parsePluginAddress(flags.plugin);
    const httpAddr = typeof flags.http === "string" && flags.http ? parseHttpAddress(flags.http) : null;
    const shutdownMs =
      typeof flags["shutdown-timeout"] === "string" ? parseDuration(flags["shutdown-timeout"], "--shutdown-timeout") : 30_000;
    const local = localConfig(flags);
    const s3 = s3Config(flags);
    const modproxy = modproxyConfig(flags, local.cacheDir);
    const limits = limitsConfig(flags);
    if (modproxy && !httpAddr) throw new Error("config: --modproxy needs --http=ADDR (the proxy is served at /mod)");
    const str = (k: string) => (typeof flags[k] === "string" && flags[k] ? (flags[k] as string) : null);
    const tokens = new TokenChecker({ token: str("token"), readToken: str("read-token") });
    const tlsCert = str("tls-cert");
    const tlsKey = str("tls-key");
    if ((tlsCert === null) !== (tlsKey === null)) throw new Error("config: --tls-cert and --tls-key go together");
    if (tlsCert && !httpAddr) throw new Error("config: --tls-cert needs --http=ADDR");
    let tls: { cert: string; key: string } | undefined;
    if (tlsCert && tlsKey) {
      try {
        tls = { cert: readFileSync(tlsCert, "utf8"), key: readFileSync(tlsKey, "utf8") };
      } catch (err) {
        throw new Error(`config: --tls-cert/--tls-key: ${(err as Error).message}`);
      }
    }
    const metrics = new Metrics();
    const disk = openLocalStore(local, metrics, logger);

    // Exactly as direct mode (commands/plugin.ts) wires the tiers.
    let cache: Flushable = createLocalCache(disk, metrics);
    if (s3) {
      const { createTieredCache } = await import("../store/tiered.ts");
      cache = createTieredCache({ disk, local: cache, s3, metrics, logger }) as Flushable;
    }

    let shuttingDown = false;
    // Read-only clients' puts go to private scratch stores (src/auth/readonly.ts).
    const scratchRoot = join(local.cacheDir, "gostash-read-only");
    const plugin = await startPluginServer({
      address: pluginAddr,
      handler: cache,
      metrics,
      logger,
      tokens,
      readOnlyHandler: (id) => createReadOnlyHandler(cache, join(scratchRoot, `${process.pid}-${id}`), metrics),
      limits: { maxConnections: limits.maxConnections, maxInflight: limits.maxInflight, idleTimeoutMs: limits.idleTimeoutMs },
    });
    const router = createHttpRouter({
      metrics,
      unhealthy: () => (shuttingDown ? "shutting down" : null),
      info: () => ({
        plugin: formatPluginAddress(plugin.address),
        cache_dir: local.cacheDir,
        bucket: s3?.bucket ?? null,
      }),
    });
    const modProxy = modproxy ? (await import("../modproxy/serve/mount.ts")).mountModProxy(router, { ...modproxy, metrics, logger, s3 }) : null;
    let http: ReturnType<typeof Bun.serve> | null = null;
    try {
      const handle = limitHttp(
        requireHttpAuth(tokens, router.fetch, (why) => metrics.inc(`http_${why}`)),
        { maxInFlight: limits.maxHttpRequests, maxBody: limits.maxHttpBody, metrics, logger },
      );
      const idle = limits.httpIdleTimeoutSec;
      if (httpAddr) {
        http = Bun.serve({
          hostname: httpAddr.hostname,
          port: httpAddr.port,
          idleTimeout: idle,
          // limitHttp answers 413 itself (counted); Bun's own cap only backs it up.
          maxRequestBodySize: Math.max(limits.maxHttpBody * 4, 64 << 20),
          async fetch(req, server) {
            // The idle timeout is for connections, not for a request still being
            // handled (a module waiting on its upstream): off until the answer starts.
            if (idle) server.timeout(req, 0);
            try {
              return await handle(req);
            } finally {
              if (idle) server.timeout(req, idle);
            }
          },
          ...(tls ? { tls } : {}),
        });
      }
    } catch (err) {
      plugin.stopAccepting();
      throw new Error(`config: --http: cannot listen on ${flags.http}: ${(err as Error).message}`);
    }
    // One line on stderr so scripts (and tests) learn the real addresses.
    process.stderr.write(
      `gostash serve: plugin on ${formatPluginAddress(plugin.address)}` +
        (http ? `, http on ${tls ? "https" : "http"}://${http.hostname?.includes(":") ? `[${http.hostname}]` : http.hostname}:${http.port}` : "") +
        `, cache ${local.cacheDir}${s3 ? `, bucket ${s3.bucket}` : ""}` +
        (tokens.required ? ", token required" : "") +
        "\n",
    );

    const trimTimer = setInterval(() => {
      try {
        disk.trim();
        sweepScratch(scratchRoot);
      } catch (err) {
        logger.warn(`serve: trim: ${(err as Error).message}`);
      }
    }, TRIM_EVERY_MS);
    trimTimer.unref?.();

    const stopped = new Promise<string>((resolve) => {
      const onSignal = (sig: string) => {
        if (shuttingDown) {
          // synchronous: process.exit would drop a buffered stderr write
          writeSync(2, `gostash serve: second ${sig}, exiting now\n`);
          process.exit(1);
        }
        shuttingDown = true;
        resolve(sig);
      };
      process.on("SIGINT", () => onSignal("SIGINT"));
      process.on("SIGTERM", () => onSignal("SIGTERM"));
    });

    const sig = await stopped;
    clearInterval(trimTimer);
    plugin.stopAccepting();
    const open = plugin.connections;
    logger.info(`serve: ${sig}: stopped accepting; waiting for ${open} connection(s)`);
    if (!(await plugin.idle(shutdownMs))) {
      logger.warn(`serve: ${plugin.connections} connection(s) still open after ${shutdownMs}ms; closing them`);
      plugin.closeAll();
      await plugin.idle(1000);
    }
    let left = 0;
    if (cache.flush) {
      const flushMs = s3?.flushTimeoutMs ?? 30_000;
      try {
        left = (await cache.flush(flushMs)).left;
      } catch (err) {
        logger.warn(`serve: flush: ${(err as Error).message}`);
      }
      if (left) logger.warn(`serve: ${left} upload(s) still pending after ${flushMs}ms; giving up on them`);
    }
    // Module files still being mirrored to the bucket.
    if (modProxy?.mirror) left += await modProxy.mirror.flush(s3?.flushTimeoutMs ?? 30_000);
    try {
      disk.trim();
    } catch {}
    http?.stop(true);
    if (flags.metrics) printSummary(metrics);
    process.stderr.write(`gostash serve: stopped (${sig}${left ? `, ${left} upload(s) left` : ""})\n`);
    return 0;
  },
});
