// Typed settings of the reverse proxy (options.ts: revproxyFlags), from
// checked flag values. Its files live in <cache-dir>/revproxy, as
// go-cache-plugin keeps them: the CA (src/revproxy/ca.ts) and the cached
// answers (src/revproxy/local-entries.ts).

import { join } from "node:path";
import { Targets } from "../revproxy/targets.ts";
import type { LocalConfig } from "./config.ts";
import type { Flags } from "./flags.ts";

export interface RevProxyConfig {
  targets: Targets;
  /** <cache-dir>/revproxy */
  dir: string;
  /** Largest body kept on disk and in the bucket (0: no limit). */
  maxEntryBytes: number;
  /** Memory for short-lived answers. */
  memoryBytes: number;
  timeoutMs: number;
  /** Tunnel CONNECTs to other hosts. */
  tunnel: boolean;
  installCA: boolean;
  /** Entries unused this long are trimmed (the build cache's --expiry). */
  expiryMs: number;
}

/** The proxy's directory under a cache directory. */
export const revproxyDir = (cacheDir: string): string => join(cacheDir, "revproxy");

/** null when --revproxy is not set. */
export function revproxyConfig(f: Flags, local: LocalConfig): RevProxyConfig | null {
  const hosts = f.string("revproxy");
  if (!hosts) return null;
  return {
    targets: Targets.parse(hosts, f.source("revproxy")),
    dir: revproxyDir(local.cacheDir),
    maxEntryBytes: f.number("revproxy-max-entry"),
    memoryBytes: f.number("revproxy-memory"),
    timeoutMs: f.number("revproxy-timeout") || 30_000,
    tunnel: f.bool("revproxy-tunnel"),
    installCA: f.bool("revproxy-install-ca"),
    expiryMs: local.expiryMs ?? 5 * 86_400_000,
  };
}
