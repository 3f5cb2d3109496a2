// The daemon's plugin socket: every connection is one GOCACHEPROG
// conversation (exactly what a `go` command speaks to a direct-mode plugin),
// answered by one CacheProgSession over the cache the whole process shares.
//
// Each part has its own file under server/:
// - listen.ts: the Unix socket (owner-only, stale file replaced) or TCP port;
// - connection.ts: one connection's life (auth, conversation, finishing);
// - auth-handshake.ts: access control (src/auth/token.ts): with a token,
//   the client's first line must be `GOSTASH-AUTH <token>`, else one line
//   `GOSTASH-ERROR unauthorized: ...` and a hang-up; a read-only token's
//   connection reads the shared cache but its puts land in a private
//   scratch store of its own (answered with a DiskPath there, so `go list
//   -export` and friends work), never in the shared cache or S3. Without a
//   token, an auth line a bridge sends anyway is skipped;
// - first-line.ts, ../hello.ts: the hello a bridge sends when this daemon
//   advertises that it reads one (what the go command behind the
//   connection is: its toolchain, for toolchain marks);
// - writer.ts: answers batched per tick, with backpressure (reading pauses
//   while a client does not read them);
// - limits.ts, session-input.ts: --max-connections, --max-inflight,
//   --idle-timeout.
//
// `close` from a client ends that conversation only: the shared handler's
// close is never called from here (uploads carry on in the background).

import type { CacheHandler } from "../cacheprog/session.ts";
import type { TokenChecker } from "../auth/token.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { daemonCapabilityLine, type ClientHello } from "./hello.ts";
import type { DiskMark } from "./disk-mark.ts";
import { formatPluginAddress, type PluginAddress } from "./address.ts";
import { Connection, type ConnectionContext } from "./server/connection.ts";
import { Admission } from "./server/limits.ts";
import { listenPlugin, stopListening } from "./server/listen.ts";

export interface PluginServerOptions {
  address: PluginAddress;
  /** The shared cache; its close() is never called from here. */
  handler: CacheHandler;
  metrics: Metrics;
  logger: Logger;
  /** Tokens clients must present (none: no handshake required). */
  tokens?: TokenChecker;
  /** The handler for one read-only connection (needed when a read token is set). */
  readOnlyHandler?: (connID: number) => CacheHandler;
  /**
   * The handler for each connection, one per go command (its close() ends
   * that command's conversation, never the shared cache): replaces handler
   * and readOnlyHandler when set, so a cache can keep per-command state.
   */
  connectionHandler?: (access: "rw" | "ro", connID: number, client: ClientHello) => CacheHandler;
  /** Ask clients for a hello (daemon/hello.ts) and pass what it says to connectionHandler. */
  hello?: boolean;
  /** The build cache's directory and its mark (disk-mark.ts), offered to bridges that see it. */
  disk?: DiskMark | null;
  limits?: ConnectionLimits;
}

export interface ConnectionLimits {
  /** Connections open at once; more are refused (0: no limit). */
  maxConnections?: number;
  /** Pending answers per connection before its input is paused (0: no limit). */
  maxInflight?: number;
  /** Close connections idle this long (0: never). */
  idleTimeoutMs?: number;
}

export interface PluginServer {
  /** Where it listens (the real port when 0 was asked for). */
  readonly address: PluginAddress;
  /** Open connections. */
  readonly connections: number;
  /** Stop accepting; open connections carry on. Removes the Unix socket file. */
  stopAccepting(): void;
  /** Resolves when no connection is open, or false after timeoutMs. */
  idle(timeoutMs: number): Promise<boolean>;
  /** Cut every open connection (their puts in progress are aborted). */
  closeAll(): void;
}

type Sock = Bun.Socket<Connection>;

export async function startPluginServer(o: PluginServerOptions): Promise<PluginServer> {
  const open = new OpenConnections();
  o.metrics.gauge("connections", () => open.size);
  const admission = new Admission(o.limits?.maxConnections ?? 0, o.metrics, o.logger);
  const ctx = connectionContext(o);

  const socket: Bun.SocketHandler<Connection> = {
    open(s) {
      const c = new Connection(s, ctx);
      const refusal = admission.refusal(c.id, open.size);
      if (refusal !== null) return c.refuseBusy(refusal);
      open.add(s);
      o.metrics.inc("connections_total");
      c.start();
    },
    data: (s, chunk) => s.data.data(chunk),
    drain: (s) => s.data.drain(),
    end: (s) => s.data.end(),
    close(s) {
      if (s.data?.close()) open.delete(s);
    },
    error: (s, err) => (s.data ? s.data.error(err) : o.logger.warn(`serve: connection ?: ${err.message}`)),
  };

  const listening = await listenPlugin(o.address, socket);
  o.logger.debug(`serve: listening on ${formatPluginAddress(listening.address)}`);
  let stopped = false;
  return {
    address: listening.address,
    get connections() {
      return open.size;
    },
    stopAccepting() {
      if (stopped) return;
      stopped = true;
      stopListening(listening);
    },
    idle: (timeoutMs) => open.idle(timeoutMs),
    closeAll: () => open.terminateAll(),
  };
}

/** What the connections share: the handlers, tokens and limits. */
function connectionContext(o: PluginServerOptions): ConnectionContext {
  const shared = o.handler;
  // Per-connection view of the shared cache: `close` is a no-op.
  const handler: CacheHandler = {
    get: (actionID) => shared.get(actionID),
    put: (actionID, outputID, size) => shared.put(actionID, outputID, size),
    close() {},
  };
  return {
    metrics: o.metrics,
    logger: o.logger,
    tokens: o.tokens?.required ? o.tokens : null,
    handlerFor: o.connectionHandler ?? ((access, id) => (access === "ro" && o.readOnlyHandler ? o.readOnlyHandler(id) : handler)),
    hello: o.hello === true,
    capabilityLine: daemonCapabilityLine({ hello: o.hello === true, disk: o.disk ?? null }),
    maxInflight: o.limits?.maxInflight ?? 0,
    idleTimeoutMs: o.limits?.idleTimeoutMs ?? 0,
  };
}

/** The admitted connections still open, and who waits for there to be none. */
class OpenConnections {
  private readonly socks = new Set<Sock>();
  private waiters: (() => void)[] = [];

  get size(): number {
    return this.socks.size;
  }

  add(s: Sock): void {
    this.socks.add(s);
  }

  delete(s: Sock): void {
    this.socks.delete(s);
    if (this.socks.size > 0) return;
    const w = this.waiters;
    this.waiters = [];
    for (const wake of w) wake();
  }

  idle(timeoutMs: number): Promise<boolean> {
    if (this.socks.size === 0) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  terminateAll(): void {
    for (const s of [...this.socks]) s.terminate();
  }
}
