// One connection to the plugin socket: one GOCACHEPROG conversation
// (exactly what a `go` command speaks to a direct-mode plugin), answered by
// one CacheProgSession.
//
// Its life, as the Phase union below spells out:
//   opening (accepted; admitted or refused under --max-connections)
//     -> auth-pending (a token is required) or sniffing (none is)
//     -> greeting: the capability line went out; a hello (daemon/hello.ts)
//        is looked for, when this daemon reads them
//     -> active: the conversation runs
//     -> finishing: no more input is read; every pending answer goes out,
//        then the socket is ended (after the client's EOF, an idle close,
//        or broken framing)
//     -> closed.
//   A connection over --max-connections or with a bad token is refused
//   instead: one GOSTASH-ERROR line, then a hang-up.
//
// - `close` from the client ends that conversation only: the shared
//   handler's close is never called (uploads carry on in the background);
// - the socket is closed after the client half-closes (EOF) and every answer
//   is out, so a bridge that sees the daemon hang up early knows something
//   went wrong;
// - broken framing or a client that hangs up mid-request costs that
//   connection only: its half-written puts are aborted and the rest of the
//   daemon never notices.

import { HELLO_PREFIX, MAX_HELLO_LINE, NO_HELLO, parseHello, type ClientHello } from "../hello.ts";
import { CacheProgSession, FramingError, type CacheHandler } from "../../cacheprog/session.ts";
import type { TokenChecker } from "../../auth/token.ts";
import type { Logger } from "../../util/log.ts";
import type { Metrics } from "../../util/metrics.ts";
import { AuthHandshake, unauthorizedLine, type HandshakeStep } from "./auth-handshake.ts";
import { FirstLineSniffer, type FirstLineStep } from "./first-line.ts";
import { HANGUP_GRACE_MS, IdleWatch } from "./limits.ts";
import { ReadPause } from "./read-pause.ts";
import { SessionInput } from "./session-input.ts";
import { ConnectionWriter } from "./writer.ts";

/** What every connection of one server shares. */
export interface ConnectionContext {
  metrics: Metrics;
  logger: Logger;
  /** Tokens a client must present, or null when none is required. */
  tokens: TokenChecker | null;
  /** The handler for a connection with that access, and what its hello said. */
  handlerFor(access: "rw" | "ro", connID: number, client: ClientHello): CacheHandler;
  /** Clients are asked for a hello (daemon/hello.ts) and it is read. */
  hello: boolean;
  /** The capability line every connection gets (daemon/hello.ts daemonCapabilityLine). */
  capabilityLine: string;
  /** Pending answers per connection before its input is held (0: no limit). */
  maxInflight: number;
  /** Close connections idle this long (0: never). */
  idleTimeoutMs: number;
}

/** A running conversation: its session and the input on its way in. */
interface Conversation {
  session: CacheProgSession;
  input: SessionInput;
}

type Phase =
  /** Accepted; not yet admitted (or refused) under --max-connections. */
  | { kind: "opening" }
  /** A token is required: nothing is said until the auth line is checked. */
  | { kind: "auth-pending"; handshake: AuthHandshake }
  /** No token is required: the capability line went out; an auth line a bridge sends anyway is looked for. */
  | { kind: "sniffing"; handshake: AuthHandshake }
  /** Access is settled and the capability line went out: a hello is looked for before the conversation starts. */
  | { kind: "greeting"; access: "rw" | "ro"; sniffer: FirstLineSniffer }
  | { kind: "active"; conv: Conversation }
  /** No more input is read: pending answers go out, then the socket is ended. */
  | { kind: "finishing" }
  /** Busy or unauthorized: one error line went out; the client hangs up (or is cut off). */
  | { kind: "refused" }
  | { kind: "closed" };

type Sock = Bun.Socket<Connection>;

let nextConnID = 0;

export class Connection {
  readonly id = ++nextConnID;
  private phase: Phase = { kind: "opening" };
  private readonly readPause: ReadPause;
  private readonly writer: ConnectionWriter;
  private idle: IdleWatch | null = null;

  /** Becomes sock's data at once, so that every event of the socket finds it. */
  constructor(
    private readonly sock: Sock,
    private readonly ctx: ConnectionContext,
  ) {
    sock.data = this;
    this.readPause = new ReadPause(sock);
    this.writer = new ConnectionWriter(sock, this.readPause, () => this.idle?.touch());
  }

  /** Admitted: the handshake or the conversation starts. */
  start(): void {
    if (this.phase.kind === "opening") this.phase = this.begin();
  }

  /** Over --max-connections: one line, and the client hangs up once it has read it. */
  refuseBusy(line: string): void {
    this.phase = { kind: "refused" };
    this.sock.write(line);
    // Hanging up first, right on accept, can reach the client before its
    // connect completes, and Bun's client then reports a failed connect
    // instead of the reason.
    this.terminateAfterGrace();
  }

  data(chunk: Uint8Array): void {
    const p = this.phase;
    if (p.kind !== "auth-pending" && p.kind !== "sniffing" && p.kind !== "greeting" && p.kind !== "active") return;
    this.idle?.touch();
    if (p.kind === "active") p.conv.input.push(chunk);
    else if (p.kind === "greeting") this.greeted(p, p.sniffer.feed(chunk));
    else this.decide(p.handshake.feed(chunk));
  }

  /** The client half-closed: answer what is pending (and what is held), then close. */
  end(): void {
    const p = this.phase;
    if (p.kind === "auth-pending" || p.kind === "sniffing") this.decide(p.handshake.end());
    const g = this.phase;
    if (g.kind === "greeting") this.greeted(g, g.sniffer.end());
    const q = this.phase;
    if (q.kind === "active") q.conv.input.end();
  }

  drain(): void {
    this.writer.flush();
  }

  /** The socket closed (either side); false if it was closed already. */
  close(): boolean {
    const p = this.phase;
    if (p.kind === "closed") return false;
    this.phase = { kind: "closed" };
    this.idle?.stop();
    this.writer.close();
    this.readPause.close();
    if (p.kind === "auth-pending" || p.kind === "sniffing") p.handshake.dispose();
    this.ctx.logger.debug(`serve: connection ${this.id} closed`);
    const conv = p.kind === "active" ? p.conv : null;
    if (conv) {
      // A client that vanished without EOF: abort its half-written puts.
      conv.input.stop();
      conv.session.end().catch(() => this.ctx.metrics.inc("connections_aborted"));
    }
    return true;
  }

  error(err: Error): void {
    this.ctx.logger.warn(`serve: connection ${this.id}: ${err.message}`);
  }

  /** The phase an admitted connection starts in. */
  private begin(): Phase {
    const { ctx } = this;
    ctx.logger.debug(`serve: connection ${this.id} opened`);
    this.sock.setNoDelay?.(true);
    this.idle = new IdleWatch(ctx.idleTimeoutMs, () => this.owed(), (quiet) => this.closeIdle(quiet));
    if (ctx.tokens) return { kind: "auth-pending", handshake: new AuthHandshake(ctx.tokens, (step) => this.decide(step)) };
    this.writer.writeNow(this.ctx.capabilityLine);
    return { kind: "sniffing", handshake: new AuthHandshake(null) };
  }

  /** Acts on what the auth handshake decided. */
  private decide(step: HandshakeStep): void {
    const p = this.phase;
    if (step.kind === "wait") return;
    if (step.kind === "refused") return this.refuseUnauthorized(step.why);
    if (step.kind === "authenticated") {
      if (step.access === "ro") this.ctx.metrics.inc("connections_read_only");
      this.ctx.logger.debug(`serve: connection ${this.id}: authenticated (${step.access === "ro" ? "read-only" : "read-write"})`);
      this.writer.writeNow(this.ctx.capabilityLine);
      this.greet(step.access, step.rest);
    } else if (p.kind === "sniffing") this.greet("rw", step.rest);
  }

  /** Access is settled: the conversation starts, after the client's hello when hellos are read. */
  private greet(access: "rw" | "ro", rest: Uint8Array): void {
    if (!this.ctx.hello) return this.activate(access, NO_HELLO, rest);
    const greeting = { kind: "greeting" as const, access, sniffer: new FirstLineSniffer(HELLO_PREFIX, MAX_HELLO_LINE) };
    this.phase = greeting;
    if (rest.length) this.greeted(greeting, greeting.sniffer.feed(rest));
  }

  private greeted(p: { access: "rw" | "ro" }, step: FirstLineStep): void {
    if (step.kind === "done") this.activate(p.access, this.helloOf(step.line), step.rest);
  }

  /** What a hello line says; a line that is not one is said on stderr and ignored (the connection goes on). */
  private helloOf(line: string | null): ClientHello {
    if (line === null) return NO_HELLO;
    try {
      const hello = parseHello(line);
      this.ctx.logger.debug(`serve: connection ${this.id}: hello: ${JSON.stringify(hello.goEnv)}`);
      return hello;
    } catch (err) {
      this.ctx.logger.warn(`serve: connection ${this.id}: ignored its hello: ${(err as Error).message}`);
      return NO_HELLO;
    }
  }

  private activate(access: "rw" | "ro", client: ClientHello, rest: Uint8Array): void {
    const conv = this.converse(access, client);
    this.phase = { kind: "active", conv };
    if (rest.length) conv.input.push(rest);
  }

  /** Starts the conversation (the capability line went out already). */
  private converse(access: "rw" | "ro", client: ClientHello): Conversation {
    const { ctx, id } = this;
    let input: SessionInput | null = null;
    const session = new CacheProgSession(
      ctx.handlerFor(access, id, client),
      { write: (line) => this.writer.write(line) },
      {
        onError(err, req) {
          ctx.metrics.inc("errors");
          ctx.logger.warn(`serve: connection ${id}: ${req.command} ${req.id}: ${(err as Error)?.message ?? err}`);
        },
        onSettle: ctx.maxInflight > 0 ? () => input?.settle() : undefined,
      },
      { maxInflight: ctx.maxInflight },
    );
    input = new SessionInput(session, ctx.maxInflight, this.readPause, {
      onHold() {
        ctx.metrics.inc("inflight_waits");
        ctx.logger.debug(`serve: connection ${id}: ${ctx.maxInflight} answers pending (--max-inflight); not reading it until they go out`);
      },
      onBroken: (err) => {
        ctx.metrics.inc("connection_errors");
        ctx.logger.warn(`serve: connection ${id}: ${(err as Error)?.message ?? err}; closing it`);
        this.finish("framing");
      },
      onEnd: () => this.finish("eof"),
    });
    return { session, input };
  }

  /** No more input will be read from this client; answer what is pending, then close. */
  private finish(why: "eof" | "framing"): void {
    const p = this.phase;
    if (p.kind !== "active") return;
    this.phase = { kind: "finishing" };
    this.idle?.stop();
    p.conv.input.stop();
    p.conv.session
      .end()
      .catch((err) => this.logEndError(err))
      .finally(() => {
        if (why === "framing") this.writer.discardBacklog(); // nothing useful left to say
        this.writer.endWhenFlushed();
      });
  }

  private logEndError(err: unknown): void {
    if (err instanceof FramingError) {
      this.ctx.metrics.inc("connections_aborted");
      this.ctx.logger.warn(`serve: connection ${this.id}: ${err.message}`);
    } else this.ctx.logger.error(`serve: connection ${this.id}: ${(err as Error)?.stack ?? err}`);
  }

  /** Something is owed to the client, or held from it: not idle. */
  private owed(): boolean {
    const p = this.phase;
    const conv = p.kind === "active" ? p.conv : null;
    return (conv !== null && (conv.session.pending > 0 || conv.input.busy)) || !this.writer.empty;
  }

  /** --idle-timeout: the client said nothing for that long and is owed nothing. */
  private closeIdle(quietMs: number): void {
    const p = this.phase;
    if (p.kind !== "auth-pending" && p.kind !== "sniffing" && p.kind !== "greeting" && p.kind !== "active") return;
    this.ctx.metrics.inc("connections_idle_closed");
    this.ctx.logger.info(`serve: connection ${this.id}: no request for ${Math.round(quietMs / 1000)}s (--idle-timeout); closing it`);
    this.phase = { kind: "finishing" };
    if (p.kind === "auth-pending" || p.kind === "sniffing") p.handshake.dispose();
    const conv = p.kind === "active" ? p.conv : null;
    conv?.input.stop();
    const ended = conv ? conv.session.end().catch(() => {}) : Promise.resolve();
    void ended.finally(() => this.writer.endWhenFlushed());
    this.terminateAfterGrace();
  }

  private refuseUnauthorized(why: string): void {
    this.phase = { kind: "refused" };
    this.ctx.metrics.inc("auth_refused");
    this.ctx.logger.warn(`serve: connection ${this.id}: refused: ${why}`);
    this.sock.write(unauthorizedLine(why));
    this.sock.end();
    // A client that does not hang up in turn is cut off.
    this.terminateAfterGrace();
  }

  private terminateAfterGrace(): void {
    setTimeout(() => this.sock.terminate(), HANGUP_GRACE_MS).unref?.();
  }
}
