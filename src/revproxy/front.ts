// The front of the --http port when --revproxy is on. Bun.serve cannot
// answer CONNECT with a socket to tunnel (measured: it hands CONNECT to
// fetch() like any request, with no way to the connection), and it cannot
// tell an absolute-form proxy request (`GET http://host/x`) from an
// ordinary one (both arrive as http://host/x). So a small TCP front
// (Bun.listen) reads the first request line of each connection and
// decides where the connection goes, then only copies bytes (pipe.ts):
//
//   CONNECT host:port, host listed   answered 200, then piped to the inner
//                                    TLS server, which terminates TLS with
//                                    a certificate from gostash's CA for
//                                    the listed hosts (listener.ts)
//   CONNECT host:port, not listed    tunnelled to host:port untouched
//                                    (--no-revproxy-tunnel: 403)
//   METHOD http://... (absolute)     piped to the inner proxy server
//   anything else                    piped to the inner server of the
//                                    daemon's own endpoints (/metrics, /mod)
//
// The decision is per connection: clients send proxy requests on proxy
// connections and ordinary ones on others. The inner servers listen on
// Unix sockets in a private (0700) directory, so nothing reaches them
// around the front and its token check.
//
// States of a connection: head (reading the first line, and a CONNECT's
// headers) -> connecting (the client is paused while the inner server or
// the tunnel's host is dialled) -> piping -> closed. Nothing is parsed
// once piping.

import type { Socket, SocketHandler } from "bun";
import type { TokenChecker } from "../auth/token.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { proxyToken } from "./handler.ts";
import { Pipe } from "./pipe.ts";
import { formatAuthority, parseAuthority, type Targets } from "./targets.ts";

export interface InnerSockets {
  /** The daemon's own endpoints. */
  direct: string;
  /** Absolute-form proxy requests. */
  proxy: string;
  /** TLS for CONNECTs to listed hosts. */
  tls: string;
}

export interface FrontDeps {
  inner: InnerSockets;
  targets: Targets;
  tokens: TokenChecker;
  /** Tunnel CONNECTs to hosts that are not listed (go-cache-plugin does). */
  tunnel: boolean;
  /** Close a connection that sends no first line, or a tunnel with no traffic, after this long (0: never). */
  idleSec: number;
  metrics: Metrics;
  logger: Logger;
  /** CONNECT tunnels open now (terminated or not), for the revproxy_tunnels_open gauge. */
  tunnels: { open: number };
}

/** Longest first line, and longest CONNECT head, the front reads. */
const MAX_LINE = 16 << 10;
const MAX_HEAD = 32 << 10;

type State = "head" | "connecting" | "piping" | "closed";

const CONNECT_LINE = /^CONNECT (\S+) HTTP\/1\.[01]$/;
const ABSOLUTE_FORM = /^[A-Z]+ [a-zA-Z][a-zA-Z0-9+.-]*:\/\//;
const CONNECTED = new TextEncoder().encode("HTTP/1.1 200 Connection established\r\n\r\n");

export class FrontConnection {
  state: State = "head";
  pipe: Pipe | null = null;
  private buf: Uint8Array = new Uint8Array(0);
  /** The client half-closed while a tunnel's peer was being dialled: the peer gets that EOF after the bytes before it. */
  private clientEnded = false;
  /** Where the connection goes once its first line is read: the daemon's own servers ("inner", "terminated") or a tunnel. */
  private kind = "";

  constructor(
    readonly client: Socket<FrontConnection>,
    private readonly d: FrontDeps,
  ) {
    if (d.idleSec) client.timeout(d.idleSec);
  }

  onData(chunk: Uint8Array): void {
    if (this.state === "piping") return this.pipe!.forward(this.client as Socket<unknown>, chunk);
    if (this.state === "closed") return;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    if (this.state === "head") this.examine();
  }

  /**
   * The client sent EOF: a client done sending (a shutdown(SHUT_WR) after
   * its request) still reads its answer. A tunnel passes the EOF on, after
   * the bytes before it. The daemon's own HTTP servers are not told: Bun's
   * server drops a request whose client half-closed, unanswered; they end
   * the connection themselves after the answer (or when idle). With no
   * whole first line yet, there is nothing to answer.
   */
  onEnd(): void {
    if (this.state === "head") return void this.client.end();
    if (this.kind !== "tunnel") return;
    if (this.pipe) this.pipe.endOf(this.client as Socket<unknown>);
    else this.clientEnded = true;
  }

  onClose(): void {
    if (this.pipe) this.pipe.closedOf(this.client as Socket<unknown>);
    this.state = "closed";
  }

  /**
   * The idle timeout (--http-idle-timeout) ran out: a connection that sent
   * no whole first line (or CONNECT head), or a tunnel with no traffic
   * either way, is closed. Bun does nothing on a timeout unless told.
   */
  onTimeout(): void {
    if (this.state === "piping") this.pipe!.destroy();
    else if (this.state === "head") {
      this.state = "closed";
      this.client.terminate();
    } else return;
    this.d.metrics.inc("revproxy_idle_closed");
  }

  /** Decides where the connection goes once the first line (for CONNECT: the whole head) is in. */
  private examine(): void {
    const lineEnd = this.buf.indexOf(0x0a);
    if (lineEnd < 0) {
      if (this.buf.length > MAX_LINE) this.reply(414, "URI Too Long", "request line too long");
      return;
    }
    const line = new TextDecoder().decode(this.buf.subarray(0, lineEnd)).replace(/\r$/, "");
    const connect = CONNECT_LINE.exec(line);
    if (!connect) {
      const initial = this.buf;
      this.buf = new Uint8Array(0);
      void this.dial({ unix: ABSOLUTE_FORM.test(line) ? this.d.inner.proxy : this.d.inner.direct }, initial, { reply: false, idle: false, kind: "inner" });
      return;
    }
    const headEnd = findHeadEnd(this.buf);
    if (!headEnd) {
      if (this.buf.length > MAX_HEAD) this.reply(431, "Request Header Fields Too Large", "CONNECT head too long");
      return;
    }
    const head = new TextDecoder().decode(this.buf.subarray(0, headEnd.at));
    const rest = this.buf.subarray(headEnd.at + headEnd.length);
    this.buf = new Uint8Array(0);
    this.onConnect(connect[1]!, head, rest);
  }

  private onConnect(target: string, head: string, rest: Uint8Array): void {
    const { metrics, tokens, targets } = this.d;
    if (tokens.required && tokens.check(proxyToken(new Request("http://proxy/", { headers: headerPairs(head) }))) === "none") {
      metrics.inc("revproxy_auth_refused");
      return this.reply(407, "Proxy Authentication Required", "proxy authentication required: a valid token (HTTPS_PROXY=http://user:TOKEN@host:port)", {
        "Proxy-Authenticate": 'Basic realm="gostash", charset="UTF-8"',
      });
    }
    const t = parseAuthority(target);
    if (!t) return this.reply(400, "Bad Request", `CONNECT needs host:port, got ${JSON.stringify(target)}`);
    if (targets.matches(t.host, t.port, "https")) {
      metrics.inc("revproxy_connect_terminated");
      return void this.dial({ unix: this.d.inner.tls }, rest, { reply: true, idle: false, kind: "terminated" });
    }
    if (!this.d.tunnel) {
      metrics.inc("revproxy_connect_refused");
      return this.reply(403, "Forbidden", `${formatAuthority(t.host, t.port)} is not a host this proxy serves, and tunnels are off (--no-revproxy-tunnel)`);
    }
    metrics.inc("revproxy_connect_tunnelled");
    void this.dial({ hostname: t.host, port: t.port }, rest, { reply: true, idle: true, kind: "tunnel" });
  }

  /** Pauses the client, dials the peer, then pipes (after a `200` for CONNECT). */
  private async dial(where: { unix: string } | { hostname: string; port: number }, initial: Uint8Array, o: { reply: boolean; idle: boolean; kind: string }): Promise<void> {
    this.state = "connecting";
    this.kind = o.kind;
    this.client.pause();
    if (!o.idle && this.d.idleSec) this.client.timeout(0);
    let peer: Socket<FrontConnection>;
    try {
      peer = await Bun.connect<FrontConnection>({ ...where, data: this, socket: PEER_HANDLERS } as Parameters<typeof Bun.connect<FrontConnection>>[0]);
    } catch (err) {
      this.d.metrics.inc("revproxy_connect_failed");
      const what = "unix" in where ? "the daemon's inner server" : formatAuthority(where.hostname, where.port);
      this.d.logger.debug(`revproxy: ${o.kind}: cannot reach ${what}: ${(err as Error)?.message ?? err}`);
      return this.reply(502, "Bad Gateway", `cannot reach ${what}: ${(err as Error)?.message ?? err}`);
    }
    // The client may have gone while the peer was dialled (onClose ran meanwhile).
    if ((this.state as State) === "closed") return void peer.end();
    const tracked = o.kind !== "inner";
    if (tracked) this.d.tunnels.open++;
    this.pipe = new Pipe(this.client as Socket<unknown>, peer as Socket<unknown>, {
      idleSec: o.idle ? this.d.idleSec : 0,
      onFinish: () => void (tracked && this.d.tunnels.open--),
    });
    this.state = "piping";
    if (o.reply) this.pipe.forward(peer as Socket<unknown>, CONNECTED);
    const pending = this.buf.length ? Buffer.concat([initial, this.buf]) : initial;
    this.buf = new Uint8Array(0);
    if (pending.length) this.pipe.forward(this.client as Socket<unknown>, pending);
    if (this.clientEnded) this.pipe.endOf(this.client as Socket<unknown>);
    this.client.resume();
  }

  /** Answers the front's own refusals, then closes. */
  private reply(status: number, reason: string, message: string, headers: Record<string, string> = {}): void {
    const body = `${message}\n`;
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
    this.client.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Cache: refused\r\n${extra}Connection: close\r\n\r\n${body}`,
    );
    this.state = "closed";
    this.client.end();
  }
}

/** The end of a request head: after "\r\n\r\n" (or a bare "\n\n"). */
function findHeadEnd(buf: Uint8Array): { at: number; length: number } | null {
  const crlf = Buffer.from(buf.buffer, buf.byteOffset, buf.length).indexOf("\r\n\r\n");
  if (crlf >= 0) return { at: crlf, length: 4 };
  const lf = Buffer.from(buf.buffer, buf.byteOffset, buf.length).indexOf("\n\n");
  return lf >= 0 ? { at: lf, length: 2 } : null;
}

/** The header lines of a request head, as name/value pairs. */
function headerPairs(head: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of head.split(/\r?\n/).slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) out.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return out;
}

/** The sockets the front dials (the inner servers, tunnelled hosts): their events go to the pipe. */
const PEER_HANDLERS: SocketHandler<FrontConnection> = {
  data: (s, chunk) => s.data.pipe?.forward(s as Socket<unknown>, chunk),
  drain: (s) => s.data.pipe?.drained(s as Socket<unknown>),
  end: (s) => s.data.pipe?.endOf(s as Socket<unknown>),
  close: (s) => s.data.pipe?.closedOf(s as Socket<unknown>),
  // Only a tunnel's peer has a timeout (pipe.ts): no byte either way for that long.
  timeout: (s) => s.data.onTimeout(),
  error: () => {},
  connectError: () => {},
};

/** The front listener's handlers: each client socket gets a FrontConnection. */
export function frontHandlers(d: FrontDeps): SocketHandler<FrontConnection> {
  return {
    open: (s) => void (s.data = new FrontConnection(s, d)),
    data: (s, chunk) => s.data.onData(chunk),
    drain: (s) => s.data.pipe?.drained(s as Socket<unknown>),
    end: (s) => s.data.onEnd(),
    close: (s) => s.data?.onClose(),
    timeout: (s) => s.data?.onTimeout(),
    error: () => {},
  };
}
