// The daemon's status page (GET / and /status.json on --http), wired to the
// parts of a running `gostash serve`: src/http/status/ knows none of them
// and is handed plain data and functions (StatusSources) from here.
//
// Also starts what the page needs that nothing else keeps: the history
// sampler, the most-requested-modules counter fed by the module proxy, and
// the local disk's first measurement.

import type { BuildCache } from "../buildcache/open.ts";
import type { S3Config } from "../config/config.ts";
import type { Flags, FlagSpecs } from "../config/flags.ts";
import { formatPluginAddress, type PluginAddress } from "../daemon/address.ts";
import type { Router } from "../http/router.ts";
import { flagsInEffect } from "../http/status/flags-in-effect.ts";
import { History } from "../http/status/history.ts";
import { addStatusRoutes } from "../http/status/routes.ts";
import type { BucketView, StatusSources } from "../http/status/sources.ts";
import type { S3Client } from "../s3/client.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { TopN } from "../util/top-n.ts";
import { VERSION } from "../version.ts";

/** Modules tracked by the most-requested counter (the page shows the top 15). */
const TOP_MODULES_TRACKED = 200;

export interface StatusParts {
  /** Null when the daemon serves the module proxy alone (no --plugin). */
  build: { cache: BuildCache; plugin: { address: PluginAddress } } | null;
  client: S3Client | null;
  s3: S3Config | null;
  cacheDir: string;
  modproxy: boolean;
  specs: FlagSpecs;
  flags: Flags;
}

export interface DaemonStatus {
  /** For the module proxy's onModuleRequest. */
  moduleRequested: (module: string) => void;
  /** Adds the page's routes to the router; call once the parts exist. */
  mount(router: Router, parts: StatusParts): void;
}

export function daemonStatus(metrics: Metrics, logger: Logger): DaemonStatus {
  const startedAt = Date.now();
  const history = new History(metrics);
  const topModules = new TopN(TOP_MODULES_TRACKED);
  return {
    moduleRequested: (module) => topModules.add(module),
    mount(router, p) {
      addStatusRoutes(router, sources(p, { metrics, history, startedAt, topModules }));
      history.start();
      p.build?.cache.usage.measure().catch((err) => logger.debug(`status: measuring the local cache: ${(err as Error)?.message ?? err}`));
    },
  };
}

function sources(p: StatusParts, s: { metrics: Metrics; history: History; startedAt: number; topModules: TopN }): StatusSources {
  const { client, s3 } = p;
  return {
    metrics: s.metrics,
    history: s.history,
    version: VERSION,
    startedAt: s.startedAt,
    facts: { plugin: p.build ? formatPluginAddress(p.build.plugin.address) : null, cache_dir: p.cacheDir, bucket: s3?.bucket ?? null, modproxy: p.modproxy ? "/mod" : null },
    flags: flagsInEffect(p.specs, p.flags),
    ...(p.build ? { commands: commandsOf(p.build.cache) } : {}),
    ...(client && s3 ? { bucket: () => bucketView(client, s3) } : {}),
    ...(p.modproxy ? { topModules: () => s.topModules.top() } : {}),
  };
}

function commandsOf(cache: BuildCache): NonNullable<StatusSources["commands"]> {
  return () => ({ open: cache.commands.open, recent: cache.commands.recent() });
}

function bucketView(client: S3Client, s3: S3Config): BucketView {
  return {
    name: s3.bucket,
    readOnly: s3.readOnly,
    breaker: client.breaker.state,
    failingNow: client.lastError.failingNow,
    lastError: client.lastError.value,
    lastSuccessAt: client.lastError.lastSuccess,
  };
}
