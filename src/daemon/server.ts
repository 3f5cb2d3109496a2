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
// - access control (src/auth/token.ts): when the daemon has a token, the
//   client's first line must be `GOSTASH-AUTH <token>`; nothing (not even the
//   capability line) is said before it. A wrong or missing token gets one
//   line `GOSTASH-ERROR unauthorized: ...` and the connection is closed. A
//   read-only token's connection reads the shared cache but its puts land in
//   a private scratch store of its own (answered with a DiskPath there, so
//   `go list -export` and friends work), never in the shared cache or S3.
//   Without a token, an auth line a bridge sends anyway is skipped.
// - limits (all optional, 0 means none):
//   - maxConnections: a connection beyond it gets one line
//     `GOSTASH-ERROR busy: ...` (naming --max-connections) and is closed;
//     the bridge then builds from its local cache (connections_refused);
//   - maxInflight: while that many answers of one connection are pending,
//     the session stops consuming its input and the socket is paused; the
//     rest is held and fed in again as answers go out (backpressure, never
//     an error; counted as inflight_waits);
//   - idleTimeoutMs: a connection that sent nothing for that long and is
//     owed nothing is closed (connections_idle_closed). The bridge treats a
//     close with nothing pending as routine and dials again when its go
//     command next asks for something (src/daemon/bridge.ts).

import { chmodSync, existsSync, unlinkSync } from "node:fs";
import { CAPABILITY_LINE } from "../cacheprog/protocol.ts";
import { CacheProgSession, FramingError, type CacheHandler } from "../cacheprog/session.ts";
import { AUTH_PREFIX, ERROR_PREFIX, MAX_AUTH_LINE, parseAuthLine, type Access, type TokenChecker } from "../auth/token.ts";
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
  /** Tokens clients must present (none: no handshake required). */
  tokens?: TokenChecker;
  /** The handler for one read-only connection (needed when a read token is set). */
  readOnlyHandler?: (connID: number) => CacheHandler;
  /** One connection's handler (one go command: packs); its close() ends the conversation, without waiting for uploads. */
  connectionHandler?: (access: "rw" | "ro", connID: number) => CacheHandler;
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

/** A client that does not hang up after our refusal or idle close is cut off after this long. */
const HANGUP_GRACE_MS = 2000;

/** A client that has not sent its auth line within this long is cut off. */
const AUTH_TIMEOUT_MS = 10_000;

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
  /** null until the client is authenticated (or refused). */
  session: CacheProgSession | null;
  /** "pending": waiting for the auth line; "sniff": no token needed, skip an auth line if one comes. */
  auth: "pending" | "sniff" | "ok" | "refused";
  authBuf: Buffer | null;
  authTimer: ReturnType<typeof setTimeout> | null;
  /** Response bytes not yet accepted by the kernel, and lines not yet encoded. */
  backlog: Buffer | null;
  lines: string[];
  scheduled: boolean;
  /** Reading is paused because answers are not being read (outPaused) or too many are pending (inflightPaused). */
  outPaused: boolean;
  inflightPaused: boolean;
  sockPaused: boolean;
  /** Input not consumed yet while inflightPaused; EOF came while some was held. */
  held: Buffer | null;
  endAfterHeld: boolean;
  /** Date.now() of the last byte in or answer out. */
  lastActive: number;
  idleTimer: ReturnType<typeof setTimeout> | null;
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
  const maxConnections = o.limits?.maxConnections ?? 0;
  const maxInflight = o.limits?.maxInflight ?? 0;
  const idleMs = o.limits?.idleTimeoutMs ?? 0;
  let warnedBusy = false;

  const updatePause = (s: Sock) => {
    const c = s.data;
    const want = c.outPaused || c.inflightPaused;
    if (want === c.sockPaused || c.closed) return;
    c.sockPaused = want;
    if (want) s.pause();
    else s.resume();
  };

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
      if (n > 0) c.lastActive = Date.now();
      c.backlog = n >= c.backlog.length ? null : c.backlog.subarray(n);
    }
    if (c.backlog && c.backlog.length > OUT_HIGH && !c.outPaused) {
      c.outPaused = true;
      updatePause(s);
    } else if (!c.backlog && c.outPaused) {
      c.outPaused = false;
      updatePause(s);
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
    if (!c.session) {
      c.sessionEnded = true;
      schedule(s);
      return;
    }
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

  const tokens = o.tokens?.required ? o.tokens : null;

  /** Input for the session; whatever it does not take (maxInflight reached) is held. */
  const feed = (s: Sock, bytes: Uint8Array) => {
    const c = s.data;
    try {
      const full = maxInflight > 0 && c.session!.pending >= maxInflight;
      const n = full ? 0 : c.session!.push(bytes);
      if (n < bytes.length) {
        // Copied: the chunk's memory is not ours to keep.
        c.held = Buffer.from(bytes.subarray(n));
        if (!c.inflightPaused) {
          c.inflightPaused = true;
          metrics.inc("inflight_waits");
          logger.debug(`serve: connection ${c.id}: ${maxInflight} answers pending (--max-inflight); not reading it until they go out`);
          updatePause(s);
        }
      }
    } catch (err) {
      metrics.inc("connection_errors");
      logger.warn(`serve: connection ${c.id}: ${(err as Error)?.message ?? err}; closing it`);
      c.held = null;
      finish(s, "framing");
    }
  };

  /** An answer went out: feed held input again while there is room. */
  const settle = (s: Sock) => {
    const c = s.data;
    if (!c.held || c.closed || c.finishing) return;
    if (c.session!.pending >= maxInflight) return;
    const b = c.held;
    c.held = null;
    feed(s, b);
    if (c.held || c.finishing) return;
    c.inflightPaused = false;
    updatePause(s);
    if (c.endAfterHeld) finish(s, "eof");
  };

  /** Closes a connection that sent nothing for idleMs and is owed nothing; re-arms otherwise. */
  const checkIdle = (s: Sock) => {
    const c = s.data;
    c.idleTimer = null;
    if (c.closed || c.finishing) return;
    const quiet = Date.now() - c.lastActive;
    const busy = (c.session?.pending ?? 0) > 0 || c.held !== null || c.backlog !== null || c.lines.length > 0;
    if (busy || quiet < idleMs) {
      c.idleTimer = setTimeout(() => checkIdle(s), busy ? idleMs : idleMs - quiet);
      return;
    }
    metrics.inc("connections_idle_closed");
    logger.info(`serve: connection ${c.id}: no request for ${Math.round(quiet / 1000)}s (--idle-timeout); closing it`);
    c.finishing = true;
    const ended = c.session ? c.session.end().catch(() => {}) : Promise.resolve();
    void ended.finally(() => {
      c.sessionEnded = true;
      schedule(s);
    });
    setTimeout(() => s.terminate(), HANGUP_GRACE_MS).unref?.();
  };

  const refuseBusy = (s: Sock) => {
    const c = s.data;
    c.finishing = true;
    c.sessionEnded = true;
    c.auth = "refused";
    metrics.inc("connections_refused");
    const why = `busy: too many connections (${open.size} open; raise --max-connections / GOSTASH_MAX_CONNECTIONS, now ${maxConnections})`;
    if (!warnedBusy) logger.warn(`serve: connection ${c.id}: refused: ${why} (counted in connections_refused from now on)`);
    else logger.debug(`serve: connection ${c.id}: refused: ${why}`);
    warnedBusy = true;
    s.write(`${ERROR_PREFIX}${why}\n`);
    // The client hangs up once it has read the line. Hanging up first, right
    // on accept, can reach the client before its connect completes, and
    // Bun's client then reports a failed connect instead of the reason.
    setTimeout(() => s.terminate(), HANGUP_GRACE_MS).unref?.();
  };

  const startSession = (s: Sock, access: Access) => {
    const c = s.data;
    const h = o.connectionHandler ? o.connectionHandler(access === "ro" ? "ro" : "rw", c.id) : access === "ro" && o.readOnlyHandler ? o.readOnlyHandler(c.id) : handler;
    c.session = new CacheProgSession(
      h,
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
        onSettle: maxInflight > 0 ? () => settle(s) : undefined,
      },
      { maxInflight },
    );
    c.lines.push(CAPABILITY_LINE);
    flush(s);
  };

  const refuse = (s: Sock, why: string) => {
    const c = s.data;
    if (c.authTimer) clearTimeout(c.authTimer);
    c.authTimer = null;
    c.auth = "refused";
    c.authBuf = null;
    c.finishing = true;
    c.sessionEnded = true;
    metrics.inc("auth_refused");
    logger.warn(`serve: connection ${c.id}: refused: ${why}`);
    s.write(`${ERROR_PREFIX}unauthorized: ${why}\n`);
    s.end();
    // A client that does not hang up in turn is cut off.
    setTimeout(() => s.terminate(), HANGUP_GRACE_MS).unref?.();
  };

  /** Bytes before the session runs: the auth line (required or optional). Returns what is left for the session, or null. */
  const authenticate = (s: Sock, chunk: Uint8Array): Uint8Array | null => {
    const c = s.data;
    const buf = c.authBuf ? Buffer.concat([c.authBuf, chunk]) : Buffer.from(chunk);
    if (c.auth === "sniff") {
      const n = Math.min(buf.length, AUTH_PREFIX.length);
      if (buf.subarray(0, n).toString("latin1") !== AUTH_PREFIX.slice(0, n)) {
        c.auth = "ok";
        c.authBuf = null;
        return buf;
      }
    }
    const nl = buf.indexOf(10);
    if (nl < 0) {
      if (buf.length > MAX_AUTH_LINE) {
        if (c.auth === "pending") refuse(s, "no auth line (expected GOSTASH-AUTH <token>)");
        else {
          c.auth = "ok";
          c.authBuf = null;
          return buf;
        }
        return null;
      }
      c.authBuf = buf;
      return null;
    }
    c.authBuf = null;
    const rest = buf.subarray(nl + 1);
    if (c.auth === "sniff") {
      c.auth = "ok"; // no token needed: the line is skipped
      return rest;
    }
    if (c.authTimer) clearTimeout(c.authTimer);
    c.authTimer = null;
    const cred = parseAuthLine(buf.subarray(0, nl).toString("utf8"));
    if (cred === null) {
      refuse(s, "missing token");
      return null;
    }
    const access = tokens!.check(cred);
    if (access === "none") {
      refuse(s, "wrong token");
      return null;
    }
    c.auth = "ok";
    if (access === "ro") metrics.inc("connections_read_only");
    logger.debug(`serve: connection ${c.id}: authenticated (${access === "ro" ? "read-only" : "read-write"})`);
    startSession(s, access);
    return rest;
  };

  const socketHandler: Bun.SocketHandler<Conn> = {
    open(s) {
      const c: Conn = {
        id: ++nextConnID,
        session: null,
        auth: tokens ? "pending" : "sniff",
        authBuf: null,
        authTimer: null,
        backlog: null,
        lines: [],
        scheduled: false,
        outPaused: false,
        inflightPaused: false,
        sockPaused: false,
        held: null,
        endAfterHeld: false,
        lastActive: Date.now(),
        idleTimer: null,
        finishing: false,
        sessionEnded: false,
        closed: false,
      };
      s.data = c;
      if (maxConnections > 0 && open.size >= maxConnections) {
        refuseBusy(s);
        return;
      }
      open.add(s);
      metrics.inc("connections_total");
      logger.debug(`serve: connection ${c.id} opened`);
      s.setNoDelay?.(true);
      if (idleMs > 0) c.idleTimer = setTimeout(() => checkIdle(s), idleMs);
      if (tokens) {
        c.authTimer = setTimeout(() => {
          c.authTimer = null;
          if (c.auth === "pending" && !c.closed) refuse(s, `no auth line within ${AUTH_TIMEOUT_MS / 1000}s`);
        }, AUTH_TIMEOUT_MS);
      } else startSession(s, "rw");
    },
    data(s, chunk) {
      const c = s.data;
      if (c.finishing) return;
      c.lastActive = Date.now();
      if (c.auth === "pending" || c.auth === "sniff") {
        const rest = authenticate(s, chunk);
        if (!rest || !rest.length) return;
        chunk = rest as Buffer;
      }
      // Bytes that arrive while input is held (read before the pause took) queue behind it.
      if (c.held) c.held = Buffer.concat([c.held, chunk]);
      else feed(s, chunk);
    },
    drain(s) {
      flush(s);
    },
    end(s) {
      const c = s.data;
      if (c.auth === "sniff" && c.authBuf) {
        // A short first message that only looked like an auth line.
        c.auth = "ok";
        const b = c.authBuf;
        c.authBuf = null;
        feed(s, b);
        if (c.finishing) return;
      } else if (c.auth === "pending") {
        refuse(s, "missing token");
        return;
      } else if (c.auth === "refused") return;
      if (c.held) {
        c.endAfterHeld = true; // finished once the held input is fed in
        return;
      }
      finish(s, "eof");
    },
    close(s) {
      const c = s.data;
      if (!c || c.closed) return;
      c.closed = true;
      if (c.authTimer) clearTimeout(c.authTimer);
      if (c.idleTimer) clearTimeout(c.idleTimer);
      c.held = null;
      open.delete(s);
      logger.debug(`serve: connection ${c.id} closed`);
      // A client that vanished without EOF: abort its half-written puts.
      if (!c.finishing) {
        c.finishing = true;
        c.session?.end().catch(() => metrics.inc("connections_aborted"));
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
