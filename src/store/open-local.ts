// Opens the local disk store the way every command wants it: configured from
// flags, with disk trouble (full, read-only) turned into one clear warning
// and a counted metric instead of failed puts.

import type { LocalConfig } from "../config/config.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { createDiskStore, type DiskStore } from "./disk.ts";

export function openLocalStore(local: LocalConfig, metrics: Metrics, logger: Logger): DiskStore {
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
