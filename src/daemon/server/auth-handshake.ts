// Access control on the plugin socket (tokens: src/auth/token.ts), before a
// connection's conversation starts.
//
// When the daemon has a token, the client's first line must be
// `GOSTASH-AUTH <token>`; nothing (not even the capability line) is said
// before it. A wrong or missing token, a first line that is not one (longer
// than MAX_AUTH_LINE without a newline), EOF before it, or no line within
// AUTH_TIMEOUT_MS gets one line `GOSTASH-ERROR unauthorized: ...` and the
// connection is closed. A read-only token's connection gets its own handler
// (see server.ts).
//
// Without a token, the conversation starts at once, and an auth line a
// bridge sends anyway is skipped: the first bytes are sniffed
// (first-line.ts), and as soon as they cannot be the start of
// `GOSTASH-AUTH ` they are the conversation's.

import { AUTH_PREFIX, ERROR_PREFIX, MAX_AUTH_LINE, parseAuthLine, type Access, type TokenChecker } from "../../auth/token.ts";
import { FirstLineSniffer, type FirstLineStep } from "./first-line.ts";

/** A client that has not sent its auth line within this long is cut off. */
export const AUTH_TIMEOUT_MS = 10_000;

/** What the bytes seen so far decide. */
export type HandshakeStep =
  /** The auth line is not complete yet. */
  | { kind: "wait" }
  /** A token was required and is good; rest is the start of the conversation. */
  | { kind: "authenticated"; access: "rw" | "ro"; rest: Uint8Array }
  /** No token was required; rest is the conversation's (an auth line skipped). */
  | { kind: "passed"; rest: Uint8Array }
  | { kind: "refused"; why: string };

type State =
  /** A token is required: the first line is buffered until it is complete. */
  | { kind: "required"; buf: Buffer | null; timer: ReturnType<typeof setTimeout> | null }
  /** No token is required: bytes that may still be the start of an auth line are held. */
  | { kind: "sniffing"; sniffer: FirstLineSniffer }
  | { kind: "decided" };

export class AuthHandshake {
  private state: State;

  /**
   * tokens null: no token required. onTimeout is called (once) if a required
   * auth line has not arrived within timeoutMs; the handshake is then refused.
   */
  constructor(
    private readonly tokens: Pick<TokenChecker, "check"> | null,
    onTimeout: (step: HandshakeStep) => void = () => {},
    timeoutMs = AUTH_TIMEOUT_MS,
  ) {
    if (!tokens) {
      this.state = { kind: "sniffing", sniffer: new FirstLineSniffer(AUTH_PREFIX, MAX_AUTH_LINE) };
      return;
    }
    const timer = setTimeout(() => {
      if (this.state.kind !== "required") return;
      onTimeout(this.refuse(`no auth line within ${timeoutMs / 1000}s`));
    }, timeoutMs);
    this.state = { kind: "required", buf: null, timer };
  }

  /** A token is required and has not been checked yet (nothing may be said to the client). */
  get pending(): boolean {
    return this.state.kind === "required";
  }

  /** The next bytes from the client. */
  feed(chunk: Uint8Array): HandshakeStep {
    const s = this.state;
    if (s.kind === "decided") return { kind: "passed", rest: chunk };
    if (s.kind === "sniffing") return this.sniffed(s.sniffer.feed(chunk));
    const buf = s.buf ? Buffer.concat([s.buf, chunk]) : Buffer.from(chunk);
    const nl = buf.indexOf(10);
    if (nl >= 0) return this.check(buf, nl);
    if (buf.length <= MAX_AUTH_LINE) {
      s.buf = buf;
      return { kind: "wait" };
    }
    return this.refuse("no auth line (expected GOSTASH-AUTH <token>)");
  }

  /** The client sent EOF. */
  end(): HandshakeStep {
    const s = this.state;
    if (s.kind === "required") return this.refuse("missing token");
    // A short first message that only looked like the start of an auth line is the conversation's.
    if (s.kind === "sniffing") return this.sniffed(s.sniffer.end());
    return { kind: "passed", rest: new Uint8Array(0) };
  }

  /** The connection is gone. */
  dispose(): void {
    if (this.state.kind === "required" && this.state.timer) clearTimeout(this.state.timer);
    this.state = { kind: "decided" };
  }

  private check(buf: Buffer, nl: number): HandshakeStep {
    const cred = parseAuthLine(buf.subarray(0, nl).toString("utf8"));
    // A bridge with nothing to present still sends the line, empty (bridge/state-machine.ts).
    if (cred === null || cred === "") return this.refuse("missing token");
    const access: Access = this.tokens!.check(cred);
    if (access === "none") return this.refuse("wrong token");
    this.dispose();
    return { kind: "authenticated", access, rest: buf.subarray(nl + 1) };
  }

  /** No token is required: an auth line is skipped, anything else is the conversation's. */
  private sniffed(step: FirstLineStep): HandshakeStep {
    return step.kind === "wait" ? step : this.pass(step.rest);
  }

  private pass(rest: Uint8Array): HandshakeStep {
    this.dispose();
    return { kind: "passed", rest };
  }

  private refuse(why: string): HandshakeStep {
    this.dispose();
    return { kind: "refused", why };
  }
}

/** The one line a refused client gets before the daemon hangs up. */
export function unauthorizedLine(why: string): string {
  return `${ERROR_PREFIX}unauthorized: ${why}\n`;
}
