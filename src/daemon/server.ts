// The daemon's plugin socket: every connection is one GOCACHEPROG
// conversation (exactly what a `go` command speaks to a direct-mode plugin),
// answered by one CacheProgSession over the cache the whole process shares.
//
// Per connection:
// - the capability line goes out first, on open;
// - response lines are batched per tick and written with Bun's socket
//   write(), which accepts only what the kernel takes: the rest is kept and
//   resent on `drain`; while more than OUT_HIGH bytes wait, reading from that
//   client pauses (a client that never reads cannot grow our memory);
// - `close` from the client ends that conversation only: the shared handler's
//   close is never called (uploads carry on in the background);
// - the socket is closed after the client half-closes (EOF) and every answer
//   is out, so a bridge that sees the daemon hang up early knows something
//   went wrong;
// - broken framing or a client that hangs up mid-request costs that
//   connection only: its half-written puts are aborted and the rest of the
//   daemon never notices.

import { chmodSync, existsSync, unlinkSync } from "node:fs";
import { CAPABILITY_LINE } from "../cacheprog/protocol.ts";
import { CacheProgSession, FramingError, type CacheHandler } from "../cacheprog/session.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { formatPluginAddress, type PluginAddress } from "./address.ts";

const OUT_HIGH = 1 << 20;

export interface PluginServerOptions {
  address: PluginAddress;
  /** The shared cache; its close() is never called from here. */
  handler: CacheHandler;
  metrics: Metrics;
  logger: Logger;
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

interface Conn {
  id: number;
  session: CacheProgSession;
  /** Response bytes not yet accepted by the kernel, and lines not yet encoded. */
  backlog: Buffer | null;
  lines: string[];
  scheduled: boolean;
  paused: boolean;
  /** The client sent EOF (or the conversation was abandoned): close once flushed. */
  finishing: boolean;
  sessionEnded: boolean;
  closed: boolean;
}

type Sock = Bun.Socket<Conn>;

let nextConnID = 0;

/**
 * A socket file left behind by a daemon that died is removed; one that a live
 * daemon answers on is an error (two daemons must not share a path).
 */
async function clearStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const alive = await Bun.connect({ unix: path, socket: { data() {}, error() {} } }).then(
    (s) => {
      s.terminate();
      return true;
    },
    () => false,
  );
  if (alive) throw new Error(`config: --plugin: another daemon is already serving on ${path}`);
  unlinkSync(path);
}

export async function startPluginServer(o: PluginServerOptions): Promise<PluginServer> {
  const { metrics, logger } = o;
  const shared = o.handler;
  // Per-connection view of the shared cache: `close` is a no-op.
  const handler: CacheHandler = {
    get: (actionID) => shared.get(actionID),
    put: (actionID, outputID, size) => shared.put(actionID, outputID, size),
    close() {},
  };
  const open = new Set<Sock>();
  let idleWaiters: (() => void)[] = [];
  metrics.gauge("connections", () => open.size);

  const flush = (s: Sock) => {
    const c = s.data;
    c.scheduled = false;
    if (c.closed) return;
    if (c.lines.length) {
      const fresh = Buffer.from(c.lines.join(""));
      c.lines = [];
      c.backlog = c.backlog ? Buffer.concat([c.backlog, fresh]) : fresh;
    }
    if (c.backlog) {
      const n = s.write(c.backlog);
      if (n < 0) return; // closed under us; close() cleans up
      c.backlog = n >= c.backlog.length ? null : c.backlog.subarray(n);
    }
    if (c.backlog && c.backlog.length > OUT_HIGH && !c.paused) {
      c.paused = true;
      s.pause();
    } else if (!c.backlog && c.paused) {
      c.paused = false;
      s.resume();
    }
    if (!c.backlog && c.finishing && c.sessionEnded) s.end();
  };

  const schedule = (s: Sock) => {
    if (s.data.scheduled) return;
    s.data.scheduled = true;
    queueMicrotask(() => flush(s));
  };

  /** No more input will be read from this client; answer what is pending, then close. */
  const finish = (s: Sock, why: "eof" | "framing") => {
    const c = s.data;
    if (c.finishing) return;
    c.finishing = true;
    c.session.end().then(
      () => {},
      (err) => {
        if (err instanceof FramingError) {
          metrics.inc("connections_aborted");
          logger.warn(`serve: connection ${c.id}: ${err.message}`);
        } else logger.error(`serve: connection ${c.id}: ${(err as Error)?.stack ?? err}`);
      },
    ).finally(() => {
      c.sessionEnded = true;
      if (why === "framing") c.backlog = null; // nothing useful left to say
      schedule(s);
    });
  };

  const socketHandler: Bun.SocketHandler<Conn> = {
    open(s) {
      const c: Conn = {
        id: ++nextConnID,
        session: null as unknown as CacheProgSession,
        backlog: null,
        lines: [],
        scheduled: false,
        paused: false,
        finishing: false,
        sessionEnded: false,
        closed: false,
      };
      c.session = new CacheProgSession(
        handler,
        {
          write(line) {
            if (c.closed) return;
            c.lines.push(line);
            schedule(s);
          },
        },
        {
          onError(err, req) {
            metrics.inc("errors");
            logger.warn(`serve: connection ${c.id}: ${req.command} ${req.id}: ${(err as Error)?.message ?? err}`);
          },
        },
      );
      s.data = c;
      open.add(s);
      metrics.inc("connections_total");
      logger.debug(`serve: connection ${c.id} opened`);
      s.setNoDelay?.(true);
      c.lines.push(CAPABILITY_LINE);
      flush(s);
    },
    data(s, chunk) {
      const c = s.data;
      if (c.finishing) return;
      try {
        c.session.push(chunk);
      } catch (err) {
        metrics.inc("connection_errors");
        logger.warn(`serve: connection ${c.id}: ${(err as Error)?.message ?? err}; closing it`);
        finish(s, "framing");
      }
    },
    drain(s) {
      flush(s);
    },
    end(s) {
      finish(s, "eof");
    },
    close(s) {
      const c = s.data;
      if (!c || c.closed) return;
      c.closed = true;
      open.delete(s);
      logger.debug(`serve: connection ${c.id} closed`);
      // A client that vanished without EOF: abort its half-written puts.
      if (!c.finishing) {
        c.finishing = true;
        c.session.end().catch(() => metrics.inc("connections_aborted"));
      }
      if (open.size === 0) {
        const w = idleWaiters;
        idleWaiters = [];
        for (const wake of w) wake();
      }
    },
    error(s, err) {
      logger.warn(`serve: connection ${s.data?.id ?? "?"}: ${err.message}`);
    },
  };

  let listener: Bun.SocketListener<Conn>;
  let address: PluginAddress = o.address;
  if (o.address.kind === "unix") {
    const path = o.address.path;
    await clearStaleSocket(path);
    // Owner-only from the start (umask), and again explicitly.
    const old = process.umask(0o077);
    try {
      listener = Bun.listen<Conn>({ unix: path, allowHalfOpen: true, socket: socketHandler });
    } catch (err) {
      throw new Error(`config: --plugin: cannot listen on ${path}: ${(err as Error).message}`);
    } finally {
      process.umask(old);
    }
    chmodSync(path, 0o600);
  } else {
    let l: Bun.TCPSocketListener<Conn>;
    try {
      l = Bun.listen<Conn>({
        hostname: o.address.hostname,
        port: o.address.port,
        allowHalfOpen: true,
        exclusive: true,
        socket: socketHandler,
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new Error(
        `config: --plugin: cannot listen on ${formatPluginAddress(o.address)}` +
          (code === "EADDRINUSE" || /in use|Failed to listen/i.test((err as Error).message) ? " (address in use?)" : "") +
          `: ${(err as Error).message}`,
      );
    }
    listener = l;
    address = { kind: "tcp", hostname: o.address.hostname, port: l.port };
  }
  logger.debug(`serve: listening on ${formatPluginAddress(address)}`);

  let stopped = false;
  return {
    address,
    get connections() {
      return open.size;
    },
    stopAccepting() {
      if (stopped) return;
      stopped = true;
      listener.stop(false);
      if (address.kind === "unix") {
        try {
          unlinkSync(address.path);
        } catch {}
      }
    },
    idle(timeoutMs) {
      if (open.size === 0) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), timeoutMs);
        idleWaiters.push(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
    },
    closeAll() {
      for (const s of [...open]) s.terminate();
    },
  };
}
