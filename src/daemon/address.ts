// Where the daemon's plugin socket lives, as `--plugin` and `connect` spell
// it: a bare port means 127.0.0.1:<port> (go-cache-plugin compatible), a
// host:port is taken as given, anything with a slash is a Unix socket path.
// Kept free of imports: `gostash connect` parses it on its start-up path.

import { resolve } from "node:path";

export type PluginAddress =
  | { kind: "tcp"; hostname: string; port: number }
  | { kind: "unix"; path: string };

export function parsePluginAddress(text: string, what = "--plugin"): PluginAddress {
  const t = text.trim();
  if (/^\d+$/.test(t)) return { kind: "tcp", hostname: "127.0.0.1", port: port(t, what, text) };
  if (t.startsWith("unix:")) return { kind: "unix", path: resolve(t.slice(5)) };
  if (t.includes("/") || t.endsWith(".sock")) return { kind: "unix", path: resolve(t) };
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(t);
  if (m) return { kind: "tcp", hostname: m[1] ?? (m[2] || "127.0.0.1"), port: port(m[3]!, what, text) };
  throw new Error(`config: ${what}: expected a port, host:port or a Unix socket path, got ${JSON.stringify(text)}`);
}

function port(p: string, what: string, text: string): number {
  const n = Number(p);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`config: ${what}: bad port in ${JSON.stringify(text)}`);
  return n;
}

export function formatPluginAddress(a: PluginAddress): string {
  if (a.kind === "unix") return a.path;
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}
