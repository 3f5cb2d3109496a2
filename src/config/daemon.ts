// Typed settings of `gostash serve` and `gostash connect` from their
// checked flags (options.ts: serveFlags, connectFlags).

import { readFileSync } from "node:fs";
import { parsePluginAddress, type PluginAddress } from "../daemon/address.ts";
import { ConfigError } from "./error.ts";
import type { Flags } from "./flags.ts";

export interface ServeConfig {
  /** The plugin socket; null for a module proxy alone. */
  plugin: PluginAddress | null;
  http: { hostname: string; port: number } | null;
  shutdownMs: number;
  token: string | null;
  readToken: string | null;
  /** PEM certificate and key for HTTPS on --http. */
  tls: { cert: string; key: string } | null;
}

export interface ConnectConfig {
  address: PluginAddress;
  dialTimeoutMs: number;
  answerTimeoutMs: number;
  token: string | null;
  /** Answer hits from the daemon's disk when this process sees it (--local-hits). */
  localHits: boolean;
}

export function serveConfig(f: Flags): ServeConfig {
  const plugin = f.string("plugin");
  const http = f.string("http");
  // go-cache-plugin always requires --plugin; a module proxy alone needs no
  // build-cache socket, so --http with --modproxy is enough here.
  if (!plugin && !(http && f.bool("modproxy"))) {
    throw new ConfigError(
      "serve needs --plugin=PORT|SOCKET (or GOCACHE_PLUGIN): the socket `gostash connect` reaches the build cache on; " +
        "for a module proxy alone, give --http=ADDR --modproxy instead",
    );
  }
  const tls = tlsConfig(f);
  if (tls && !http) throw new ConfigError(`${f.source("tls-cert")} needs --http=ADDR`);
  return {
    plugin: plugin ? parsePluginAddress(plugin, f.source("plugin")) : null,
    http: http ? httpAddress(http, f.source("http")) : null,
    shutdownMs: f.number("shutdown-timeout"),
    token: f.string("token") ?? null,
    readToken: f.string("read-token") ?? null,
    tls,
  };
}

/** `--http`: like a TCP plugin address, but loopback unless a host is named. */
function httpAddress(text: string, what: string): { hostname: string; port: number } {
  const a = parsePluginAddress(text, what);
  if (a.kind !== "tcp") throw new ConfigError(`${what}: expected a port or host:port, got ${JSON.stringify(text)}`);
  return { hostname: a.hostname, port: a.port };
}

function tlsConfig(f: Flags): ServeConfig["tls"] {
  const cert = f.string("tls-cert");
  const key = f.string("tls-key");
  if (!cert && !key) return null;
  if (!cert || !key) throw new ConfigError("--tls-cert and --tls-key go together");
  try {
    return { cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8") };
  } catch (err) {
    throw new ConfigError(`${f.source("tls-cert")}/${f.source("tls-key")}: ${(err as Error).message}`, { cause: err });
  }
}

/** `connect [ADDRESS]`: the positional address, else --plugin / GOCACHE_PLUGIN. */
export function connectConfig(f: Flags, positional: string | undefined): ConnectConfig {
  const where = positional ?? f.string("plugin");
  if (!where) throw new ConfigError("connect needs the daemon's address: gostash connect PORT|SOCKET (or GOCACHE_PLUGIN)");
  return {
    address: parsePluginAddress(where, positional ? "connect" : f.source("plugin")),
    dialTimeoutMs: f.number("dial-timeout"),
    answerTimeoutMs: f.number("answer-timeout"),
    token: f.string("token") ?? null,
    localHits: f.bool("local-hits"),
  };
}
