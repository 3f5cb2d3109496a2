// What the status page is shown, as the daemon hands it in: plain data and
// functions, so src/http/ knows nothing of the build cache, the bucket
// client or the module proxy (src/commands/serve-status.ts wires them).
// Every function is read when a page asks, so the page is always current.

import type { Metrics } from "../../util/metrics.ts";
import type { History } from "./history.ts";

/** One go command served through the daemon (buildcache/commands-log.ts). */
export interface CommandRow {
  id: number;
  access: "rw" | "ro";
  startedAt: number;
  endedAt: number | null;
  gets: number;
  hitsLocal: number;
  hitsRemote: number;
  misses: number;
  puts: number;
  bytesHit: number;
  bytesPut: number;
  /** Build time this command was spared, when something measures it. */
  timeSavedSeconds?: number;
}

export interface BucketErrorView {
  at: number;
  message: string;
  kind: string;
  status?: number;
  code?: string;
  cause?: string;
  hint?: string;
}

export interface BucketView {
  name: string;
  readOnly: boolean;
  breaker: "closed" | "open" | "half-open";
  /** Did the latest request to the bucket fail? */
  failingNow: boolean;
  lastError: BucketErrorView | null;
  /** When a request last succeeded (0: none yet). */
  lastSuccessAt: number;
}

export interface ModuleCount {
  key: string;
  count: number;
  /** Over-count bound of a top-N estimate (0: exact). */
  error: number;
}

/** One setting as the daemon runs with it (flags-in-effect.ts). */
export interface FlagInEffect {
  name: string;
  /** Secrets are "***"; never the value. */
  value: string;
  /** "--flag", the environment variable that set it, or "default". */
  source: string;
}

export interface StatusSources {
  metrics: Metrics;
  history: History;
  version: string;
  /** When the daemon started (ms since the epoch). */
  startedAt: number;
  /** Where things are: plugin address, cache directory, bucket, module proxy prefix (null: not set). */
  facts: Record<string, string | null>;
  flags: FlagInEffect[];
  commands?: () => { open: number; recent: CommandRow[] };
  /** Absent: no bucket configured. */
  bucket?: () => BucketView;
  /** Absent: the module proxy is off. */
  topModules?: () => ModuleCount[];
}
