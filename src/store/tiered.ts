// Placeholder until the S3 tier lands (issue 3): refuse clearly rather than
// silently ignoring --bucket.
import type { CacheHandler } from "../cacheprog/session.ts";
import type { S3Config } from "../config/config.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import type { DiskStore } from "./disk.ts";

export interface TieredOptions {
  disk: DiskStore;
  local: CacheHandler;
  s3: S3Config;
  metrics: Metrics;
  logger: Logger;
}

export function createTieredCache(_o: TieredOptions): CacheHandler {
  throw new Error("config: --bucket: the S3 tier is not built yet");
}
