// Shared by the daemon tests: a raw GOCACHEPROG client over a socket, and a
// `gostash serve` child process with its addresses read from its stderr.
import { createHash } from "node:crypto";
import { BIN } from "../helpers/env.ts";

export type Addr = { unix: string } | { hostname: string; port: number };

export function sha256hex(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

export function b64(hex: string): string {
  return Buffer.from(hex, "hex").toString("base64");
}

/** A random 32-byte ID in hex. */
export function randomID(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
}

export function getLine(id: number, actionHex: string): string {
  return `{"ID":${id},"Command":"get","ActionID":"${b64(actionHex)}"}\n\n`;
}

export function putLines(id: number, actionHex: string, body: Uint8Array): string {
  const out = sha256hex(body);
  const head = `{"ID":${id},"Command":"put","ActionID":"${b64(actionHex)}","OutputID":"${b64(out)}"${body.length ? `,"BodySize":${body.length}` : ""}}\n\n`;
  return body.length ? `${head}"${Buffer.from(body).toString("base64")}"\n` : head;
}

export function closeLine(id: number): string {
  return `{"ID":${id},"Command":"close"}\n\n`;
}

export interface Response {
  ID: number;
  Miss?: boolean;
  OutputID?: string;
  Size?: number;
  Time?: string;
  DiskPath?: string;
  Err?: string;
  KnownCommands?: string[];
}

/** A client speaking the protocol the way `go` does, with backpressure. */
export class RawClient {
  private buf = "";
  private waiters = new Map<number, (r: Response) => void>();
  readonly responses = new Map<number, Response>();
  readonly lines: string[] = [];
  closed = false;
  ended = false;
  private onClose: (() => void)[] = [];
  private pending: Uint8Array | null = null;
  private sendQueue: Uint8Array[] = [];
  private drained: (() => void)[] = [];

  private constructor(readonly sock: Bun.Socket<undefined>) {}

  static async connect(addr: Addr): Promise<RawClient> {
    let client!: RawClient;
    const handler: Bun.SocketHandler<undefined> = {
      data: (_s, d) => client.onData(d),
      drain: () => client.pump(),
      end: () => {
        client.ended = true;
      },
      close: () => {
        client.closed = true;
        for (const f of client.onClose.splice(0)) f();
        for (const f of client.drained.splice(0)) f();
      },
      error() {},
    };
    const sock =
      "unix" in addr
        ? await Bun.connect({ unix: addr.unix, allowHalfOpen: true, socket: handler })
        : await Bun.connect({ hostname: addr.hostname, port: addr.port, allowHalfOpen: true, socket: handler });
    client = new RawClient(sock);
    return client;
  }

  private onData(d: Buffer): void {
    this.buf += d.toString("utf8");
    for (let nl = this.buf.indexOf("\n"); nl >= 0; nl = this.buf.indexOf("\n")) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      this.lines.push(line);
      const r = JSON.parse(line) as Response;
      this.responses.set(r.ID, r);
      this.waiters.get(r.ID)?.(r);
      this.waiters.delete(r.ID);
    }
  }

  /** Queue bytes; resolves once the kernel took all of them. */
  send(data: string | Uint8Array): Promise<void> {
    this.sendQueue.push(typeof data === "string" ? Buffer.from(data) : data);
    this.pump();
    if (!this.pending && this.sendQueue.length === 0) return Promise.resolve();
    return new Promise((r) => this.drained.push(r));
  }

  pump(): void {
    for (;;) {
      if (this.closed) return;
      if (!this.pending) {
        const next = this.sendQueue.shift();
        if (!next) {
          for (const f of this.drained.splice(0)) f();
          return;
        }
        this.pending = next;
      }
      const n = this.sock.write(this.pending);
      if (n < 0) return;
      if (n < this.pending.length) {
        this.pending = this.pending.subarray(n);
        return;
      }
      this.pending = null;
    }
  }

  response(id: number, timeoutMs = 10_000): Promise<Response> {
    const have = this.responses.get(id);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no response to ${id} within ${timeoutMs}ms`)), timeoutMs);
      this.waiters.set(id, (r) => {
        clearTimeout(t);
        resolve(r);
      });
    });
  }

  /** Resolves when the peer closed the connection (or after timeoutMs, with false). */
  waitClosed(timeoutMs = 10_000): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.onClose.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  halfClose(): void {
    this.sock.shutdown();
  }

  kill(): void {
    this.sock.terminate();
  }
}

export interface Daemon {
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  /** As printed by the daemon: a socket path or host:port. */
  plugin: string;
  addr: Addr;
  http: string | null;
  stderr: () => string;
  /** Sends a signal and waits for the exit code (kill -9 after timeoutMs). */
  stop(signal?: NodeJS.Signals | number, timeoutMs?: number): Promise<number>;
}

/** Starts `gostash serve` and waits until it printed its addresses. */
export async function startDaemon(args: string[], env: Record<string, string | undefined> = {}): Promise<Daemon> {
  const proc = Bun.spawn([BIN, "serve", ...args], {
    env: { ...process.env, ...env } as Record<string, string>,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let err = "";
  const dec = new TextDecoder();
  let seen!: (line: string) => void;
  const ready = new Promise<string>((r) => (seen = r));
  void (async () => {
    for await (const chunk of proc.stderr) {
      err += dec.decode(chunk, { stream: true });
      const m = /gostash serve: plugin on .*\n/.exec(err);
      if (m) seen(m[0]);
    }
    seen("");
  })();
  const timer = setTimeout(() => proc.kill(9), 15_000);
  const line = await ready;
  clearTimeout(timer);
  if (!line) throw new Error(`gostash serve did not start (exit ${await proc.exited}):\n${err}`);
  const plugin = /plugin on ([^,\n]+)/.exec(line)![1]!;
  const http = /http on (http:\/\/[^,\n]+)/.exec(line)?.[1] ?? null;
  const tcp = /^(?:\[(.+)\]|([^/]+)):(\d+)$/.exec(plugin);
  const addr: Addr = tcp ? { hostname: tcp[1] ?? tcp[2]!, port: Number(tcp[3]) } : { unix: plugin };
  return {
    proc,
    plugin,
    addr,
    http,
    stderr: () => err,
    async stop(signal = "SIGTERM", timeoutMs = 30_000) {
      proc.kill(signal);
      const t = setTimeout(() => proc.kill(9), timeoutMs);
      const code = await proc.exited;
      clearTimeout(t);
      return code;
    },
  };
}

/** Waits until cond() holds, polling every 5 ms. */
export async function until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

/** n bytes of a pattern that differs by seed. */
export function body(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed) & 0xff;
  return b;
}

/**
 * Spawns the compiled `gostash connect`, fed and read like the go command
 * would: every stdout line must be protocol JSON (parsed as it arrives).
 * Killed after 30 s so a hang fails the test instead of the suite.
 */
export function spawnConnect(args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawn([BIN, "connect", ...args], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...env } as Record<string, string>,
  });
  const killer = setTimeout(() => p.kill(9), 30_000);
  const answers = new Map<number, Response>();
  const lines: string[] = [];
  /** Resolves when stdout closes. */
  const stdoutClosed = (async () => {
    let buf = "";
    for await (const chunk of p.stdout) {
      buf += Buffer.from(chunk).toString("utf8");
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        const r = JSON.parse(line) as Response; // every line must be protocol JSON
        answers.set(r.ID, r);
      }
    }
  })();
  const err = new Response(p.stderr).text();
  let stdinEnded = false;
  return {
    p,
    answers,
    lines,
    stdoutClosed,
    async write(s: string) {
      p.stdin.write(s);
      await p.stdin.flush();
    },
    answered: (id: number) => until(() => answers.has(id), `an answer to ${id}`),
    endInput() {
      if (!stdinEnded) p.stdin.end();
      stdinEnded = true;
    },
    /** Ends stdin (as go does after close) and waits for the exit. */
    async finish(): Promise<{ code: number; stderr: string; lines: string[]; killed: boolean }> {
      this.endInput();
      const [code, stderr] = await Promise.all([p.exited, err, stdoutClosed]);
      clearTimeout(killer);
      return { code, stderr, lines, killed: p.signalCode === "SIGKILL" };
    },
  };
}
