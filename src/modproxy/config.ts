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
import { ConfigError } from "../config/error.ts";
import type { Flags } from "../config/flags.ts";
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

/** null when --modproxy is off. */
export function modproxyConfig(f: Flags, cacheDir: string): ModProxyConfig | null {
  if (!f.bool("modproxy")) return null;
  const cfg = modproxySettings(f, cacheDir);
  return { ...cfg, private: privateConfig(f, cfg.dir) };
}

/**
 * The proxy's store, upstreams and checksum databases whether or not
 * --modproxy is on (mod import uses them); private modules are the serving
 * proxy's alone.
 */
export function modproxySettings(f: Flags, cacheDir: string): ModProxyConfig {
  const rules = f.string("rules");
  // A bad rules file stops the daemon before it listens anywhere (the proxy loads it again, and watches it).
  if (rules) loadRulesFile(resolve(rules));
  const dir = f.string("modproxy-dir") ? resolve(f.string("modproxy-dir")!) : join(cacheDir, "modproxy");
  return {
    dir,
    upstreams: parseUpstreams(f.string("upstream") ?? "https://proxy.golang.org"),
    rulesFile: rules ? resolve(rules) : null,
    sumdbs: parseSumdbs(f.string("sumdb")),
    listTtlMs: f.number("modproxy-list-ttl"),
    swrMs: f.number("modproxy-refresh-window"),
    notFoundTtlMs: f.number("modproxy-not-found-ttl"),
    timeoutMs: f.number("upstream-timeout") || 30_000,
    retries: f.number("upstream-retries"),
    offline: f.bool("offline"),
  };
}

/** A whole number of at least 1. */
function positive(f: Flags, k: string): number {
  const n = f.number(k);
  if (n < 1) throw new ConfigError(`${f.source(k)} must be at least 1, got ${n}`);
  return n;
}

/** null when no private pattern is set (only commas and spaces count as none). */
export function privateConfig(f: Flags, modproxyDir: string): PrivateConfig | null {
  const patterns = f.string("private");
  if (patterns === undefined || !patterns.split(",").some((p) => p.trim() !== "")) return null;
  checkGlobs(patterns, f.source("private"));
  return {
    patterns,
    modcache: f.string("private-modcache") ? resolve(f.string("private-modcache")!) : join(dirname(modproxyDir), "private-gomodcache"),
    concurrency: positive(f, "private-concurrency"),
    timeoutMs: f.number("private-timeout") || 120_000,
  };
}

/** A bad glob stops the command before it starts, with the flag named. */
export function checkGlobs(list: string, what: string): PrefixPatterns {
  try {
    return new PrefixPatterns(list);
  } catch (err) {
    if (err instanceof PatternError) throw new ConfigError(`${what}: ${err.message}`, { cause: err });
    throw err;
  }
}
