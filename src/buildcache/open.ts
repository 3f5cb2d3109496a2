// openBuildCache: the one place the build cache is put together from its
// settings, for every mode that serves the go command: plugin mode, the
// daemon (shared by all connections, with a view per connection: one go
// command each) and connect's fallback when the daemon is away.
//
//   local disk (store/disk.ts, Go's layout)    always
//   + shared S3 tier (tiered.ts)               with --bucket
//   + packs, per go command (command.ts)       unless --no-prefetch; written
//                                              unless --read-only or a
//                                              read-only connection
//   measured by a CostTracker (costs.ts)       always: time saved, per-command events
//
// The S3 code is loaded only when a bucket is set: a local-only run never
// pays for it.

import { join } from "node:path";
import type { CacheHandler } from "../cacheprog/session.ts";
import type { LocalConfig, S3Config } from "../config/config.ts";
import type { S3Client } from "../s3/client.ts";
import { openCostBook } from "../store/costs.ts";
import { createDiskStore, type DiskStore } from "../store/disk.ts";
import { sweepHeadCopies } from "../store/head-copies.ts";
import { packFilesDir, sweepPackFiles } from "../store/pack-file.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { CommandsLog } from "./commands-log.ts";
import type { PackMode } from "./command.ts";
import { CostTracker } from "./costs.ts";
import { DiskUsage } from "./disk-usage.ts";
import { createLocalCache } from "./local.ts";
import { createReadOnlyHandler, sweepScratch } from "./readonly.ts";
import type { TieredCache } from "./tiered.ts";

/** What a daemon connection's client said about its go command (daemon/hello.ts). */
export interface ConnectionClient {
  /** Its toolchain (store/toolchain-marks.ts toolchainOf), for toolchain marks. */
  toolchain?: string | null;
  /** Its command line, for the status page. */
  command?: string | null;
}

export interface BuildCacheSettings {
  local: LocalConfig;
  s3: S3Config | null;
  /** Plugin mode: the process serves one go command, so `handler` is that command's view (packs). */
  singleCommand?: boolean;
  /** That go command's toolchain (store/toolchain-marks.ts toolchainOf), when known. */
  toolchain?: string | null;
}

export interface BuildCacheDeps {
  metrics: Metrics;
  logger: Logger;
  /** The bucket's client when the caller shares it (the daemon's module mirror). */
  client?: S3Client | null;
}

export interface BuildCache {
  /** The cache itself; its close() flushes uploads (plugin mode closes it with the session). With singleCommand, one go command's view. */
  readonly handler: CacheHandler;
  readonly disk: DiskStore;
  /** The S3 tier, when a bucket is set. */
  readonly tier: TieredCache | null;
  /** What each daemon connection (go command) asked, for the status page. */
  readonly commands: CommandsLog;
  /** Bytes stored against --max-size, and trims (disk_bytes, trims, ...). */
  readonly usage: DiskUsage;
  /** What each action cost and what hits saved; listeners get every get and put (a daemon's with their connection). */
  readonly tracker: CostTracker;
  /**
   * A daemon connection's view: one go command (its own pack reads and
   * writes; close queues its pack upload and returns). Never closes the
   * shared cache; read-only ones write to a private scratch store.
   * client: what the connection's hello said (daemon/hello.ts).
   */
  connection(access: "rw" | "ro", connID: number, client?: ConnectionClient): CacheHandler;
  /** Waits for pending uploads, at most ms; how many were left. */
  flush(ms: number): Promise<{ left: number }>;
  /** Go's trim (cheap unless due), old read-only scratch stores, and (with Go's trim) old pack head copies; never throws. */
  trim(): void;
}

/** The local store, with disk trouble (full, read-only) turned into one warning and a counted metric. */
export function openDisk(local: LocalConfig, metrics: Metrics, logger: Logger): DiskStore {
  let warned = false;
  return createDiskStore({
    dir: local.cacheDir,
    maxSize: local.maxSize,
    expiryMs: local.expiryMs,
    onTrouble(err) {
      metrics.inc("disk_errors");
      if (warned) return;
      warned = true;
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      logger.warn(
        `local cache ${local.cacheDir} cannot take writes (${code}: ${err.message}); ` +
          "this build goes on uncached for the outputs that do not fit",
      );
    },
  });
}

export async function openBuildCache(s: BuildCacheSettings, deps: BuildCacheDeps): Promise<BuildCache> {
  const { metrics, logger } = deps;
  const disk = openDisk(s.local, metrics, logger);
  let tier: TieredCache | null = null;
  const tracker = new CostTracker(openCostBook(s.local.cacheDir, { onError: (err) => logger.debug(`costs: ${err.message}`) }), metrics);
  let commandView: ((packs: PackMode, closesTier: boolean, toolchain?: string | null) => CacheHandler) | null = null;
  if (s.s3) {
    const [{ createTieredCache }, { createS3Client }, { createCommandCache }] = await Promise.all([
      import("./tiered.ts"),
      import("../s3/client.ts"),
      import("./command.ts"),
    ]);
    const client = deps.client ?? createS3Client(s.s3, { metrics, logger });
    const t = createTieredCache({ disk, client, s3: s.s3, metrics, logger, costs: tracker.book });
    const packsOn = s.s3.prefetch !== false;
    tier = t;
    commandView = (packs, closesTier, toolchain) => createCommandCache(t, { packs: packsOn ? packs : "off", closesTier, toolchain });
  }
  const shared: CacheHandler = tier ?? createLocalCache(disk, metrics);
  const handler = s.singleCommand && commandView ? commandView("read-write", true, s.toolchain) : shared;
  // A connection's view: its `close` ends one go command, never the shared cache.
  const view = (packs: PackMode, toolchain: string | null): CacheHandler =>
    commandView ? commandView(packs, false, toolchain) : { get: (a) => shared.get(a), put: (a, o, n) => shared.put(a, o, n), close() {} };
  const scratchRoot = join(s.local.cacheDir, "gostash-read-only");
  const commands = new CommandsLog();
  const usage = new DiskUsage(disk, s.local.maxSize, metrics);
  tracker.listen((e) => commands.count(e));
  return {
    handler: tracker.wrap(handler),
    disk,
    tier,
    commands,
    usage,
    tracker,
    // Measured per connection, so each go command's events carry it; a read-only client's puts record no costs.
    connection: (access, connID, { toolchain = null, command = null } = {}) =>
      commands.track(
        access,
        connID,
        command,
        tracker.wrap(access === "ro" ? createReadOnlyHandler(view("read-only", toolchain), join(scratchRoot, `${process.pid}-${connID}`), metrics) : view("read-write", toolchain), {
          conn: connID,
          recordCosts: access === "rw",
        }),
      ),
    flush: (ms) => (tier ? tier.flush(ms) : Promise.resolve({ left: 0 })),
    trim() {
      try {
        const report = disk.trim();
        usage.trimmed(report);
        sweepScratch(scratchRoot);
        sweepPackFiles(packFilesDir(s.local.cacheDir));
        // Once a day, with Go's trim: one readdir and a stat per key used.
        if (!report.skipped) sweepHeadCopies(packFilesDir(s.local.cacheDir));
      } catch (err) {
        logger.debug(`trim: ${(err as Error)?.message ?? err}`);
      }
    },
  };
}
