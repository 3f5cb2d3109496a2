// Typed settings of the module proxy from the resolved --modproxy flags
// (src/config/options.ts, modproxyFlags).
//
// The module cache lives in <cache-dir>/modproxy by default: next to the
// build cache entries, but in its own directory, which neither gostash's
// trim nor the go command's own trim and `go clean -cache` touch (they only
// handle the 00..ff entry directories and trim.txt). The go command's module
// cache for private modules (--private-modcache) sits beside it, in
// <modproxy dir>/../private-gomodcache.

import { dirname, join, resolve } from "node:path";
import type { FlagValues } from "../config/flags.ts";
import { parseDuration } from "../config/units.ts";
import { PatternError, PrefixPatterns } from "./module/globs.ts";
import { loadRulesFile } from "./rules/rules-file.ts";
import { parseSumdbs, type SumdbConfig } from "./sumdb/databases.ts";
import { parseUpstreams, type Upstream } from "./upstream/fetch.ts";
import type { PrivateConfig } from "./upstream/private.ts";

export interface ModProxyConfig {
  dir: string;
  upstreams: Upstream[];
  /** --rules: the routing rules file (rules/rules.ts), or null. */
  rulesFile?: string | null;
  sumdbs: SumdbConfig[];
  /** list, @latest, version queries, sumdb latest and partial tiles. */
  listTtlMs: number;
  /** After the ttl, serve the old copy at once and refresh in the background for this long. */
  swrMs: number;
  notFoundTtlMs: number;
  timeoutMs: number;
  retries: number;
  /** --offline: no upstream traffic at all (serve/offline.ts). */
  offline: boolean;
  /** --private: modules fetched with the go command (upstream/private.ts); null when no pattern is set. */
  private?: PrivateConfig | null;
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
  const dir = str(f, "modproxy-dir") ? resolve(str(f, "modproxy-dir")!) : join(cacheDir, "modproxy");
  return {
    dir,
    upstreams: parseUpstreams(str(f, "upstream") ?? "https://proxy.golang.org"),
    rulesFile: str(f, "rules") ? resolve(str(f, "rules")!) : null,
    sumdbs: parseSumdbs(str(f, "sumdb")),
    listTtlMs: dur(f, "modproxy-list-ttl", 60_000),
    swrMs: dur(f, "modproxy-refresh-window", 3600_000),
    notFoundTtlMs: dur(f, "modproxy-not-found-ttl", 60_000),
    timeoutMs: dur(f, "upstream-timeout", 30_000) || 30_000,
    retries: Number(retries),
    offline: f.offline === true,
    private: privateConfig(f, dir),
  };
}

function count(f: FlagValues, k: string, def: number): number {
  const v = str(f, k);
  if (v === undefined) return def;
  if (!/^[1-9]\d*$/.test(v)) throw new Error(`config: --${k} must be a positive integer, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** null when no private pattern is set (only commas and spaces count as none). */
function privateConfig(f: FlagValues, modproxyDir: string): PrivateConfig | null {
  const patterns = str(f, "private");
  if (patterns === undefined || !patterns.split(",").some((p) => p.trim() !== "")) return null;
  checkGlobs(patterns, "--private (GOSTASH_PRIVATE, else GOPRIVATE)");
  return {
    patterns,
    modcache: str(f, "private-modcache") ? resolve(str(f, "private-modcache")!) : join(dirname(modproxyDir), "private-gomodcache"),
    concurrency: count(f, "private-concurrency", 4),
    timeoutMs: dur(f, "private-timeout", 120_000) || 120_000,
  };
}

/** A bad glob stops the command before it starts, with the flag named. */
export function checkGlobs(list: string, what: string): PrefixPatterns {
  try {
    return new PrefixPatterns(list);
  } catch (err) {
    if (err instanceof PatternError) throw new Error(`config: ${what}: ${err.message}`);
    throw err;
  }
}
