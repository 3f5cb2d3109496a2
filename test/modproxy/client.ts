// The go command as a client of `gostash serve --modproxy` in end-to-end
// tests: the daemon's flags over a local upstream and the test checksum
// database, the client's environment, a go command that must succeed (its
// failure shows the daemon's log), and whether the public proxy can be
// reached by the tests that use it.
import { go, goEnv } from "../helpers/go.ts";
import type { Sumdb, Upstream } from "./helpers.ts";

export const GO_TIMEOUT = 240_000;

export interface ServeOptions {
  /** Plugin socket path. */
  sock: string;
  cacheDir: string;
  up: Upstream;
  db: Sumdb;
}

/** `gostash serve` flags: HTTP on a free port, the module proxy over `up` and `db`, no upstream retries; then `extra`. */
export function modproxyServeArgs(o: ServeOptions, extra: string[] = []): string[] {
  return [
    "--plugin",
    o.sock,
    "--http",
    "127.0.0.1:0",
    "--cache-dir",
    o.cacheDir,
    "--modproxy",
    "--upstream",
    o.up.url,
    "--sumdb",
    `${o.db.name}=${o.db.url}`,
    "--upstream-retries",
    "0",
    ...extra,
  ];
}

export interface ClientOptions {
  gocache: string;
  home: string;
  /** The proxy's base URL (".../mod"). */
  proxy: string;
  db: Sumdb;
  /** Overrides (GONOSUMDB for private paths, another GOPROXY, ...). */
  extra?: Record<string, string>;
}

/** A go command that uses the proxy and its checksum-database proxy, with no private or insecure paths from the host. */
export function proxyClientEnv(o: ClientOptions): Record<string, string | undefined> {
  return goEnv({
    gocache: o.gocache,
    home: o.home,
    extra: {
      GOPROXY: o.proxy,
      GOSUMDB: `${o.db.vkey} ${o.proxy}/sumdb/${o.db.name}`,
      GONOSUMDB: "",
      GONOSUMCHECK: "",
      GOPRIVATE: "",
      GONOPROXY: "",
      GOINSECURE: "",
      GOFLAGS: "-mod=mod",
      ...o.extra,
    },
  });
}

/** Runs the go command; a failure throws with its stderr and the end of the daemon's log. */
export async function goOK(args: string[], cwd: string, env: Record<string, string | undefined>, daemon: { stderr(): string }): Promise<string> {
  const r = await go(args, cwd, env, GO_TIMEOUT);
  if (r.code !== 0) throw new Error(`go ${args.join(" ")} failed (${r.code}):\n${r.stderr}\n--- daemon:\n${daemon.stderr().slice(-3000)}`);
  return r.stdout;
}

async function reachable(url: string): Promise<boolean> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
    await r.body?.cancel();
    return r.ok;
  } catch {
    return false;
  }
}

/** Whether proxy.golang.org and its sum.golang.org proxy answer from here (test sandboxes often cannot reach them). */
export async function publicProxyReachable(): Promise<boolean> {
  return (await reachable("https://proxy.golang.org/golang.org/x/mod/@v/v0.30.0.info")) && (await reachable("https://proxy.golang.org/sumdb/sum.golang.org/supported"));
}
