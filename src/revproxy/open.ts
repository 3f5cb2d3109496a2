// Everything the reverse proxy needs, put together once for `gostash
// serve`: the CA and the server certificate for the listed hosts, the
// three tiers (memory, local disk, bucket), the shared fills, the handler,
// and the front's settings. serve.ts binds it to --http through
// listener.ts.

import type { TokenChecker } from "../auth/token.ts";
import type { RevProxyConfig } from "../config/revproxy.ts";
import type { S3Client } from "../s3/client.ts";
import { DEBUG_REVPROXY, requestLog, type Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { BucketEntries } from "./bucket-entries.ts";
import { loadOrCreateCA, type CertificateAuthority } from "./ca.ts";
import type { FrontDeps } from "./front.ts";
import { Fills } from "./fill.ts";
import { createProxyHandler, type ProxyHandler } from "./handler.ts";
import { LocalEntries } from "./local-entries.ts";
import { MemoryCache } from "./memory-cache.ts";
import { installCA } from "./trust.ts";
import { certPem, issueServer, keyPem } from "./x509.ts";

export interface RevProxyDeps {
  metrics: Metrics;
  logger: Logger;
  /** The daemon's bucket client, or null for local disk only. */
  client: S3Client | null;
  /** --read-only: read the bucket, never upload. */
  readOnly: boolean;
  tokens: TokenChecker;
}

export interface RevProxy {
  handler: ProxyHandler;
  /** The certificate (chain) and key the TLS server presents for the listed hosts. */
  identity: { cert: string; key: string };
  ca: CertificateAuthority;
  front: Omit<FrontDeps, "inner" | "idleSec">;
  /** Removes entries unused for --expiry (serve runs it hourly). */
  trim(): number;
  /** Facts for /debug/vars. */
  info(): Record<string, unknown>;
}

export function openRevProxy(cfg: RevProxyConfig, deps: RevProxyDeps): RevProxy {
  const { metrics, logger } = deps;
  const ca = loadOrCreateCA(cfg.dir, new Date(), (m) => logger.warn(m));
  if (ca.created) logger.info(`revproxy: made a new CA; clients must trust ${ca.certPath} (gostash revproxy ca prints it)`);
  if (cfg.installCA) {
    try {
      const r = installCA(ca.pem, ca.certPath);
      logger.info(`revproxy: CA ${r.changed ? "installed in" : "already in"} ${r.where}`);
    } catch (err) {
      logger.warn(`${(err as Error).message}; clients must be given ${ca.certPath}`);
    }
  }
  const server = issueServer(ca, cfg.targets.hostnames());
  const local = new LocalEntries(cfg.dir, metrics, logger);
  const memory = new MemoryCache(cfg.memoryBytes);
  const bucket = deps.client ? new BucketEntries(deps.client, { readOnly: deps.readOnly, maxEntryBytes: cfg.maxEntryBytes, metrics, logger }) : null;
  const fills = new Fills({ local, bucket, memory, metrics, logger, timeoutMs: cfg.timeoutMs, maxEntryBytes: cfg.maxEntryBytes });
  const tunnels = { open: 0 };
  metrics.gauge("revproxy_memory_bytes", () => memory.bytes);
  metrics.gauge("revproxy_memory_entries", () => memory.size);
  metrics.gauge("revproxy_fills_in_flight", () => fills.size);
  metrics.gauge("revproxy_tunnels_open", () => tunnels.open);
  const handler = createProxyHandler({
    targets: cfg.targets,
    local,
    memory,
    fills,
    tokens: deps.tokens,
    metrics,
    timeoutMs: cfg.timeoutMs,
    requestLine: requestLog(DEBUG_REVPROXY, "revproxy"),
  });
  return {
    handler,
    identity: { cert: certPem(server.der), key: keyPem(server.key) },
    ca,
    front: { targets: cfg.targets, tokens: deps.tokens, tunnel: cfg.tunnel, metrics, logger, tunnels },
    trim: () => local.trim(cfg.expiryMs),
    info: () => ({ revproxy: { hosts: cfg.targets.toString(), dir: cfg.dir, ca: ca.certPath, tunnel: cfg.tunnel } }),
  };
}
