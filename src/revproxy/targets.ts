// The hosts of --revproxy: which requests the reverse proxy serves through
// its cache, and which CONNECTs it terminates with its own certificate.
//
// An entry is `host` or `host:port` (IPv6 in brackets). A bare host means
// the scheme's default port: 80 for plain HTTP, 443 for HTTPS and CONNECT,
// as go-cache-plugin matches `api.example.com` against `CONNECT
// api.example.com:443`. A port means that port only, for either scheme.
// Names are compared in lower case and in their ASCII (punycode) form.

import { ConfigError } from "../config/error.ts";

export interface Target {
  /** Lower case, ASCII; IPv6 without brackets. */
  host: string;
  /** null: the scheme's default port. */
  port: number | null;
}

export type Scheme = "http" | "https";

const DEFAULT_PORT: Record<Scheme, number> = { http: 80, https: 443 };

export class Targets {
  private constructor(readonly list: readonly Target[]) {}

  /** Parses a comma-separated list; `what` names the flag or variable in errors. */
  static parse(text: string, what: string): Targets {
    const list: Target[] = [];
    for (const raw of text.split(",")) {
      const entry = raw.trim();
      if (!entry) continue;
      list.push(parseEntry(entry, what));
    }
    if (!list.length) throw new ConfigError(`${what}: no hosts in ${JSON.stringify(text)}`);
    return new Targets(list);
  }

  /** Is `host` on `port` a listed target for this scheme? */
  matches(host: string, port: number, scheme: Scheme): boolean {
    const h = normalHost(host);
    return this.list.some((t) => t.host === h && (t.port ?? DEFAULT_PORT[scheme]) === port);
  }

  /** The distinct host names and addresses, for the server certificate. */
  hostnames(): string[] {
    return [...new Set(this.list.map((t) => t.host))];
  }

  toString(): string {
    return this.list.map((t) => formatAuthority(t.host, t.port)).join(",");
  }
}

function parseEntry(entry: string, what: string): Target {
  let url: URL;
  try {
    url = new URL(`http://${entry}`);
  } catch {
    throw new ConfigError(`${what}: ${JSON.stringify(entry)} is not a host or host:port`);
  }
  if (url.username || url.password || url.pathname !== "/" || url.search || url.hash || entry.includes("/")) {
    throw new ConfigError(`${what}: ${JSON.stringify(entry)} is not a host or host:port (no scheme, path or credentials)`);
  }
  // URL drops a port that is the default of its scheme (80); keep what the user wrote.
  const explicitPort = /:(\d+)$/.exec(entry);
  return { host: normalHost(url.hostname), port: explicitPort ? Number(explicitPort[1]) : null };
}

/** Lower case, punycode, no IPv6 brackets, no trailing dot. */
export function normalHost(host: string): string {
  const bare = host.replace(/^\[|\]$/g, "").replace(/\.$/, "").toLowerCase();
  if (/^[\x00-\x7f]*$/.test(bare)) return bare;
  try {
    return new URL(`http://${bare}`).hostname;
  } catch {
    return bare;
  }
}

/** `host:port` (IPv6 bracketed), or the host alone when port is null. */
export function formatAuthority(host: string, port: number | null): string {
  const h = host.includes(":") ? `[${host}]` : host;
  return port === null ? h : `${h}:${port}`;
}

/** Splits a CONNECT target `host:port`; null when it is not one. */
export function parseAuthority(text: string): { host: string; port: number } | null {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]/@]+):(\d{1,5})$/.exec(text);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  return { host: normalHost(m[1]!), port };
}
