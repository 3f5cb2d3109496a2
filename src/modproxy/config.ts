// Typed settings of the module proxy from the resolved --modproxy flags
// (src/config/options.ts, modproxyFlags).
//
// The module cache lives in <cache-dir>/modproxy by default: next to the
// build cache entries, but in its own directory, which neither gostash's
// trim nor the go command's own trim and `go clean -cache` touch (they only
// handle the 00..ff entry directories and trim.txt).

import { join, resolve } from "node:path";
import type { FlagValues } from "../config/flags.ts";
import { parseDuration } from "../config/units.ts";
import { loadRulesFile } from "./rules-file.ts";
import { parseSumdbs, type SumdbConfig } from "./sumdb.ts";
import { parseUpstreams, type Upstream } from "./upstream.ts";

export interface ModProxyConfig {
  dir: string;
  upstreams: Upstream[];
  /** --rules: the routing rules file (rules.ts), or null. */
  rulesFile?: string | null;
  sumdbs: SumdbConfig[];
  /** list, @latest, version queries, sumdb latest and partial tiles. */
  listTtlMs: number;
  /** After the ttl, serve the old copy at once and refresh in the background for this long. */
  swrMs: number;
  notFoundTtlMs: number;
  timeoutMs: number;
  retries: number;
  /** --offline: no upstream traffic at all (offline.ts). */
  offline: boolean;
}

function str(f: FlagValues, k: string): string | undefined {
  const v = f[k];
  return typeof v === "string" && v !== "" ? v : undefined;
}

function dur(f: FlagValues, k: string, def: number): number {
  const v = str(f, k);
  return v === undefined ? def : parseDuration(v, `--${k}`);
}

/** null when --modproxy is off. */
export function modproxyConfig(f: FlagValues, cacheDir: string): ModProxyConfig | null {
  if (f.modproxy !== true) return null;
  const retries = str(f, "upstream-retries") ?? "2";
  // A bad rules file stops the daemon before it listens anywhere (the proxy loads it again, and watches it).
  if (str(f, "rules")) loadRulesFile(resolve(str(f, "rules")!));
  if (!/^\d+$/.test(retries)) throw new Error(`config: --upstream-retries must be a non-negative integer, got ${JSON.stringify(retries)}`);
  return {
    dir: str(f, "modproxy-dir") ? resolve(str(f, "modproxy-dir")!) : join(cacheDir, "modproxy"),
    upstreams: parseUpstreams(str(f, "upstream") ?? "https://proxy.golang.org"),
    rulesFile: str(f, "rules") ? resolve(str(f, "rules")!) : null,
    sumdbs: parseSumdbs(str(f, "sumdb")),
    listTtlMs: dur(f, "modproxy-list-ttl", 60_000),
    swrMs: dur(f, "modproxy-refresh-window", 3600_000),
    notFoundTtlMs: dur(f, "modproxy-not-found-ttl", 60_000),
    timeoutMs: dur(f, "upstream-timeout", 30_000) || 30_000,
    retries: Number(retries),
    offline: f.offline === true,
  };
}
