// `gostash connect`: the bridge between a `go` command (our stdin/stdout)
// and the daemon's plugin socket.
//
// Bytes are copied both ways:
// - stdin -> socket: Bun's socket write() accepts only what the kernel takes
//   and does not queue the rest, so the remainder is resent on `drain` and
//   stdin is not read again until it is out (backpressure towards `go`).
// - socket -> stdout: complete lines only, written synchronously; a blocked
//   stdout blocks the socket reads (backpressure towards the daemon). If
//   stdout is non-blocking and full (EAGAIN), the socket is paused and the
//   write retried.
// - EOF on stdin: everything is sent, then the socket's write side is shut
//   down (half-close); the daemon answers what is pending and hangs up.
//
// To survive the daemon going away mid-build (stopped, restarted, killed),
// the bridge keeps a light view of the conversation: every request it
// forwarded that the daemon has not answered yet, with its raw bytes (header
// lines are parsed; put bodies are kept as references to the input chunks,
// up to RETAIN_BODY each).
//
// If the daemon hangs up before `go` is done:
// - with nothing unanswered (the daemon closes connections idle for
//   --idle-timeout, e.g. while `go` links or runs a long test), nothing is
//   said: the bridge dials again when `go` sends its next request;
// - with requests unanswered, it dials again at once and replays them, in
//   their original order (gets and puts are idempotent, so one the daemon
//   had already handled does no harm);
// - if that dial fails (the daemon is gone), or the daemon keeps hanging up
//   without answering anything (MAX_REDIALS), the bridge takes over
//   in-process from the local disk cache: the unanswered requests are
//   replayed into a local CacheProgSession, which then also gets everything
//   `go` sends afterwards. One line on stderr says what happened.
// Only a put too large to have been kept cannot be replayed: the bridge
// takes over and answers it with an error (its body is skipped); `go` must
// not see errors on small puts, since some of them (the module index) fail
// the build.
//
// Access control: with a token (--token / GOSTASH_TOKEN) the bridge's first
// bytes on every connection are `GOSTASH-AUTH <token>\n` (src/auth/token.ts).
// A daemon that refuses a client (a wrong token: `GOSTASH-ERROR
// unauthorized: ...`; over --max-connections: `GOSTASH-ERROR busy: ...`)
// says so in one line and hangs up; the bridge never forwards that line to
// `go`, says once on stderr why, and serves the build from the local cache
// (the same takeover), so the build still succeeds, just without the shared
// cache.

import { writeSync } from "node:fs";
import { AUTH_PREFIX, ERROR_PREFIX } from "../auth/token.ts";
import { CAPABILITY_LINE, encodeErr } from "../cacheprog/protocol.ts";
import type { CacheHandler } from "../cacheprog/session.ts";
import { formatPluginAddress, type PluginAddress } from "./address.ts";
import { releaseStdout, writeStderr } from "../util/std-output.ts";

export type BridgeResult =
  | { kind: "unreachable"; error: Error }
  | { kind: "done"; code: number };

export interface BridgeOptions {
  dialTimeoutMs: number;
  /**
   * The capability line was already printed (cli.ts does it first thing):
   * drop the daemon's own (its first line, ID 0) instead of forwarding it.
   */
  capabilityPrinted?: boolean;
  /** Sent first as `GOSTASH-AUTH <token>` when set. */
  token?: string | null;
  /** Opens the local cache for a takeover; loaded only when needed. */
  openLocal(): Promise<{ handler: CacheHandler; where: string }>;
}

type Sock = Bun.Socket<undefined>;

const NL = 10;
const MAX_HEADER = 1 << 20;

/** Put bodies larger than this (decoded) are not kept for a replay. */
const RETAIN_BODY = 32 << 20;
/** Dials in a row that got no answer at all before the bridge gives up on the daemon. */
const MAX_REDIALS = 3;

interface Pending {
  id: number;
  /** The header line as received. */
  header: string;
  /** Raw body bytes (from the opening quote), or null if not kept. */
  body: Uint8Array[] | null;
  bodySize: number;
}

/**
 * Follows the request stream just enough to know which requests are in
 * flight, with their bytes, and where the next request starts. Header lines
 * are parsed; body lines are scanned with memchr-speed newline searches.
 */
class RequestTracker {
  /** Unanswered requests, in stream order. */
  readonly pending = new Map<number, Pending>();
  /** Bytes of a header line not yet ended. */
  partial: Uint8Array[] = [];
  private partialLen = 0;
  /** Inside a body line (after its opening quote). */
  inBody = false;
  /** A put header was seen; its body line has not ended yet. */
  awaitingBody: Pending | null = null;
  broken = false;
  /** The ID of `go`'s close request, once seen. */
  closeID: number | null = null;

  /** Some request has started but not ended in what was seen so far. */
  get midRequest(): boolean {
    return this.partialLen > 0 || this.inBody || this.awaitingBody !== null;
  }

  /** Every unanswered request could be sent again (no body was too large to keep). */
  get replayable(): boolean {
    for (const p of this.pending.values()) if (p.bodySize > 0 && p.body === null) return false;
    return true;
  }

  /** The bytes of every unanswered request, in order, then a header cut short; the tracker is left as it is. */
  replayChunks(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const p of this.pending.values()) {
      out.push(Buffer.from(`${p.header}\n\n`));
      if (p.body) out.push(...p.body);
    }
    out.push(...this.partial);
    return out;
  }

  observe(chunk: Uint8Array): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len && !this.broken) {
      if (this.inBody) {
        const nl = chunk.indexOf(NL, pos);
        const end = nl < 0 ? len : nl + 1;
        this.awaitingBody?.body?.push(chunk.subarray(pos, end));
        if (nl < 0) return;
        this.inBody = false;
        this.awaitingBody = null;
        pos = end;
        continue;
      }
      if (this.partialLen === 0) {
        const b = chunk[pos]!;
        if (b === NL || b === 13 || b === 32 || b === 9) {
          pos++;
          continue;
        }
        if (b === 34 /* '"' */) {
          this.inBody = true;
          continue; // the quote itself is part of the body bytes
        }
      }
      const nl = chunk.indexOf(NL, pos);
      const end = nl < 0 ? len : nl;
      // Copied: a header is small, and the chunk must not be kept alive for it.
      this.partial.push(new Uint8Array(chunk.subarray(pos, end)));
      this.partialLen += end - pos;
      if (nl < 0) {
        if (this.partialLen > MAX_HEADER) this.broken = true;
        return;
      }
      const line = Buffer.concat(this.partial).toString("utf8");
      this.partial = [];
      this.partialLen = 0;
      pos = nl + 1;
      this.header(line);
    }
  }

  private header(line: string): void {
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(line);
    } catch {
      this.broken = true; // the daemon will hang up on this stream too
      return;
    }
    if (typeof m !== "object" || m === null || typeof m.ID !== "number") {
      this.broken = true;
      return;
    }
    const size = typeof m.BodySize === "number" ? m.BodySize : 0;
    if (m.Command === "close") this.closeID = m.ID;
    const p: Pending = { id: m.ID, header: line, body: size > 0 && size <= RETAIN_BODY ? [] : null, bodySize: size };
    this.pending.set(p.id, p);
    if (size > 0) this.awaitingBody = p;
  }
}

/** One connection to the daemon. */
interface Conn {
  sock: Sock;
  closed: boolean;
  /** Resolves a writer waiting for this socket to drain. */
  wakeDrain: (() => void) | null;
  /** The start of a daemon line not yet ended. */
  outPartial: Uint8Array | null;
}

function wake(c: Conn): void {
  const w = c.wakeDrain;
  c.wakeDrain = null;
  w?.();
}

export async function runBridge(addr: PluginAddress, o: BridgeOptions): Promise<BridgeResult> {
  const where = formatPluginAddress(addr);
  const tracker = new RequestTracker();
  let capabilitySeen = o.capabilityPrinted === true;
  let dropFirstLine = o.capabilityPrinted === true;
  let stdinDone = false;
  let stdoutBroken = false;
  /** The answer to close went out and stdout was closed (releaseStdout). */
  let closeAnswered = false;
  let stdoutReleased = false;
  // `go` waits for our stdout to close after its close request is answered,
  // not for our exit: close it as soon as that answer is out.
  const releaseWhenAnswered = (): void => {
    if (!closeAnswered || stdoutReleased || stdoutBroken || outQueue.length) return;
    stdoutReleased = true;
    releaseStdout();
  };
  let finished!: (code: number) => void;
  const done = new Promise<number>((r) => (finished = r));
  /** The daemon connection; null after the daemon closed an idle one (dialled again on the next request). */
  let conn = null as Conn | null;
  /** A dial-and-replay in progress: stdin is not forwarded until it is done. */
  let switching: Promise<void> | null = null;
  /** Dials since the daemon last answered anything. */
  let redials = 0;

  // ---- stdout: complete lines, synchronous, EAGAIN-tolerant --------------
  const outQueue: Uint8Array[] = [];
  let retryTimer: ReturnType<typeof setTimeout> | null = null;
  let afterDrainOut: (() => void) | null = null;

  const writeRaw = (chunk: Uint8Array): void => {
    if (stdoutBroken || stdoutReleased) return;
    if (outQueue.length) {
      outQueue.push(new Uint8Array(chunk));
      return;
    }
    let off = 0;
    while (off < chunk.length) {
      try {
        off += writeSync(1, chunk, off, chunk.length - off);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EAGAIN" || code === "EWOULDBLOCK") {
          outQueue.push(new Uint8Array(chunk.subarray(off)));
          if (conn && !conn.closed) conn.sock.pause();
          retryTimer ??= setTimeout(retryOut, 1);
          return;
        }
        // `go` is gone (EPIPE): nothing left to bridge.
        stdoutBroken = true;
        outQueue.length = 0;
        conn?.sock.terminate();
        finished(1);
        return;
      }
    }
  };

  const retryOut = (): void => {
    retryTimer = null;
    const pending = outQueue.splice(0);
    for (let i = 0; i < pending.length; i++) {
      writeRaw(pending[i]!);
      if (outQueue.length || stdoutBroken) {
        outQueue.push(...pending.slice(i + 1));
        return;
      }
    }
    if (conn && !conn.closed) conn.sock.resume();
    releaseWhenAnswered();
    const then = afterDrainOut;
    afterDrainOut = null;
    then?.();
  };

  const whenOutDrained = (f: () => void) => {
    if (!outQueue.length || stdoutBroken) f();
    else afterDrainOut = f;
  };

  /** Daemon output: forward whole lines, note which requests they answer. */
  const fromDaemon = (c: Conn, chunk: Uint8Array): void => {
    let data = chunk;
    if (c.outPartial) {
      data = Buffer.concat([c.outPartial, chunk]);
      c.outPartial = null;
    }
    const last = data.lastIndexOf(NL);
    // Kept parts are copies: the socket's chunk memory is not ours to keep.
    if (last < 0) {
      c.outPartial = data === chunk ? new Uint8Array(chunk) : data;
      return;
    }
    if (last + 1 < data.length) c.outPartial = new Uint8Array(data.subarray(last + 1));
    let start = 0;
    let fwdFrom = 0;
    while (start <= last) {
      const nl = data.indexOf(NL, start);
      if (start === fwdFrom && data[start] === 71 /* G */ && isErrorLine(data, start, nl)) {
        // The daemon refused us (only ever before anything else): never forwarded.
        const reason = Buffer.from(data.subarray(start + ERROR_PREFIX.length, nl)).toString("utf8").trim();
        c.outPartial = null;
        lose(`refused this client (${reason || "unauthorized"})`, reason.startsWith("busy") ? "busy" : "unauthorized");
        return;
      }
      const id = lineID(data, start, nl);
      if (id === 0 && !capabilitySeen) capabilitySeen = true;
      else if (id === 0 && dropFirstLine) {
        // Our own capability line went out already; skip the daemon's.
        dropFirstLine = false;
        fwdFrom = nl + 1;
      } else if (id !== null && tracker.pending.delete(id)) {
        redials = 0;
        if (id === tracker.closeID) closeAnswered = true;
      }
      if (id !== 0) dropFirstLine = false;
      start = nl + 1;
    }
    if (fwdFrom <= last) writeRaw(data.subarray(fwdFrom, last + 1));
    releaseWhenAnswered();
  };

  // ---- taking over when the daemon goes away -------------------------------
  let takeover = null as Takeover | null;
  let lostWhy: string | null = null;

  const lose = (why: string, refused: "busy" | "unauthorized" | null = null): void => {
    if (lostWhy || stdoutBroken) return;
    if (stdinDone && tracker.pending.size === 0 && !refused) {
      // Nothing left to answer: a normal end.
      whenOutDrained(() => finished(0));
      return;
    }
    const c = conn;
    conn = null;
    if (c) {
      c.sock.terminate();
      wake(c);
    }
    lostWhy = why;
    if (tracker.broken) {
      // The stream itself is broken: nothing sensible to take over.
      writeStderr(`gostash connect: the daemon at ${where} ${why}; the request stream was not valid\n`);
      finished(1);
      return;
    }
    takeover = new Takeover(tracker, writeRaw, !capabilitySeen, o, where, why, refused, (code) => whenOutDrained(() => finished(code)));
    if (stdinDone) takeover.end();
  };

  /** Writes all of bytes to c; false if c was closed or replaced first. */
  const send = async (c: Conn, bytes: Uint8Array): Promise<boolean> => {
    let off = 0;
    while (off < bytes.length) {
      if (conn !== c || c.closed || lostWhy) return false;
      const n = c.sock.write(bytes, off, bytes.length - off);
      if (n < 0) return false;
      off += n;
      if (off < bytes.length) await new Promise<void>((r) => (c.wakeDrain = r));
    }
    return true;
  };

  /** The daemon hung up on c before `go` was done. */
  const dropped = (c: Conn, why: string): void => {
    if (conn !== c || lostWhy || stdoutBroken) return;
    if (tracker.broken) return lose(why);
    conn = null;
    c.sock.terminate();
    wake(c);
    if (tracker.pending.size === 0 && !tracker.midRequest) {
      // Nothing lost (an idle connection closed by the daemon): dial again on the next request.
      if (stdinDone) whenOutDrained(() => finished(0));
      return;
    }
    void redial(why);
  };

  const dial = async (): Promise<Conn> => {
    const c: Conn = { sock: null as unknown as Sock, closed: false, wakeDrain: null, outPartial: null };
    const handler: Bun.SocketHandler<undefined> = {
      data(_s, chunk) {
        if (conn === c && !lostWhy) fromDaemon(c, chunk);
      },
      drain() {
        wake(c);
      },
      end(s) {
        if (conn !== c) return;
        // The daemon is done talking: normal only after our own EOF, with everything answered.
        if (stdinDone && tracker.pending.size === 0) s.end();
        else dropped(c, "closed the connection");
      },
      close(_s, err) {
        c.closed = true;
        wake(c);
        if (conn !== c) return;
        if (stdinDone && tracker.pending.size === 0) {
          if (!lostWhy) whenOutDrained(() => finished(0));
          return;
        }
        dropped(c, err ? `dropped the connection (${err.message})` : "closed the connection");
      },
      error(_s, err) {
        if (conn === c) dropped(c, `failed (${err.message})`);
      },
      connectError() {},
    };
    const connecting =
      addr.kind === "unix"
        ? Bun.connect({ unix: addr.path, allowHalfOpen: true, socket: handler })
        : Bun.connect({ hostname: addr.hostname, port: addr.port, allowHalfOpen: true, socket: handler });
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${o.dialTimeoutMs}ms`)), o.dialTimeoutMs);
    });
    connecting.then(
      (s) => {
        if (timedOut) s.terminate();
      },
      () => {},
    );
    try {
      c.sock = await Promise.race([connecting, timeout]);
    } catch (err) {
      timedOut = true;
      throw err;
    } finally {
      clearTimeout(timer);
    }
    c.sock.setNoDelay?.(true);
    // Current from here on: its events count. The daemon's capability line is
    // dropped unless `go` has not seen one yet.
    conn = c;
    dropFirstLine = capabilitySeen;
    if (o.token) await send(c, Buffer.from(`${AUTH_PREFIX}${o.token}\n`));
    return c;
  };

  /** Dials the daemon again and sends every unanswered request once more. */
  const redial = (why: string): Promise<void> => {
    const p = (async () => {
      if (!tracker.replayable || redials >= MAX_REDIALS) return lose(why);
      redials++;
      let c: Conn;
      try {
        c = await dial();
      } catch (err) {
        return lose(`${why} (dialling it again failed: ${(err as Error).message})`);
      }
      for (const b of tracker.replayChunks()) {
        // A drop meanwhile starts the next redial (or the takeover) itself.
        if (!(await send(c, b))) return;
      }
      if (stdinDone && conn === c && !c.closed) c.sock.shutdown();
    })();
    switching = p;
    void p.finally(() => {
      if (switching === p) switching = null;
    });
    return p;
  };

  // ---- first dial -------------------------------------------------------------
  try {
    await dial();
  } catch (err) {
    return { kind: "unreachable", error: err as Error };
  }

  // ---- stdin -> socket (or to the takeover) ----------------------------------
  void (async () => {
    const reader = Bun.stdin.stream().getReader();
    try {
      for (;;) {
        const { value, done: eof } = await reader.read();
        if (eof) break;
        // Connected, or taken over, before anything is forwarded.
        for (;;) {
          while (switching) await switching;
          if (takeover || conn || lostWhy || stdoutBroken) break;
          await redial("closed an idle connection");
        }
        if (takeover) {
          takeover.push(value);
          continue;
        }
        const c: Conn | null = conn;
        if (!c) continue; // stdout is gone: nothing to bridge
        tracker.observe(value);
        let off = 0;
        while (off < value.length && conn === c && !c.closed && !lostWhy) {
          const n = c.sock.write(value, off, value.length - off);
          if (n < 0) break; // closed: the redial replays what the tracker saw
          off += n;
          if (off < value.length) await new Promise<void>((r) => (c.wakeDrain = r));
        }
      }
    } catch (err) {
      lose(`could not be reached (${(err as Error).message})`);
    }
    stdinDone = true;
    while (switching) await switching;
    if (takeover) takeover.end();
    else if (conn && !conn.closed) conn.sock.shutdown();
    else if (!lostWhy && tracker.pending.size === 0) whenOutDrained(() => finished(0));
  })();

  const code = await done;
  return { kind: "done", code };
}

function isErrorLine(buf: Uint8Array, start: number, end: number): boolean {
  if (end - start < ERROR_PREFIX.length) return false;
  for (let i = 0; i < ERROR_PREFIX.length; i++) if (buf[start + i] !== ERROR_PREFIX.charCodeAt(i)) return false;
  return true;
}

/** The first `"ID":n` of a response line, or null. */
function lineID(buf: Uint8Array, start: number, end: number): number | null {
  // Responses start with {"ID":  (all of gostash's encoders put it first).
  let i = start;
  if (end - i < 7 || buf[i] !== 123 || buf[i + 1] !== 34 || buf[i + 2] !== 73 || buf[i + 3] !== 68) {
    const m = /"ID":(\d+)/.exec(Buffer.from(buf.subarray(start, end)).toString("latin1"));
    return m ? Number(m[1]) : null;
  }
  i += 6; // past {"ID":
  let n = 0;
  let digits = 0;
  while (i < end && buf[i]! >= 48 && buf[i]! <= 57) {
    n = n * 10 + (buf[i]! - 48);
    i++;
    digits++;
  }
  return digits ? n : null;
}

/** Serves the rest of the conversation in-process after the daemon went away. */
class Takeover {
  private session: import("../cacheprog/session.ts").CacheProgSession | null = null;
  private queue: Uint8Array[] = [];
  /** Skipping the rest of a body that was too large to keep (then answered with an error). */
  private skipping: Pending | null = null;
  private ended = false;

  constructor(
    private readonly tracker: RequestTracker,
    private readonly write: (b: Uint8Array) => void,
    needCapability: boolean,
    o: BridgeOptions,
    where: string,
    why: string,
    refused: "busy" | "unauthorized" | null,
    private readonly finish: (code: number) => void,
  ) {
    if (needCapability) write(Buffer.from(CAPABILITY_LINE));
    void (async () => {
      const { handler, where: dir } = await o.openLocal();
      writeStderr(
        refused === "unauthorized"
          ? `gostash connect: error: the daemon at ${where} ${why}; check --token / GOSTASH_TOKEN. Serving this build from the local cache ${dir} instead\n`
          : refused === "busy"
            ? `gostash connect: warning: the daemon at ${where} ${why}; serving this build from the local cache ${dir} instead\n`
            : `gostash connect: the daemon at ${where} ${why} before the go command was done; finishing this build from the local cache ${dir}\n`,
      );
      const { CacheProgSession } = await import("../cacheprog/session.ts");
      this.session = new CacheProgSession(handler, { write: (line) => this.write(Buffer.from(line)) });
      this.replay();
      const q = this.queue.splice(0);
      for (const c of q) this.route(c);
      if (this.ended) await this.close();
    })().catch((err) => {
      writeStderr(`gostash connect: taking over from the daemon failed: ${(err as Error)?.message ?? err}\n`);
      this.finish(1);
    });
  }

  /** The unanswered requests, in order, then a header cut short at the switch. */
  private replay(): void {
    const t = this.tracker;
    const chunks: Uint8Array[] = [];
    for (const p of t.pending.values()) {
      const inProgress = t.awaitingBody === p;
      if (p.bodySize > 0 && p.body === null) {
        // Too large to have been kept: answer with an error (after its body, if still coming).
        if (inProgress) this.skipping = p;
        else this.write(Buffer.from(encodeErr(p.id, "gostash: the daemon went away before storing this output")));
        continue;
      }
      chunks.push(Buffer.from(`${p.header}\n\n`));
      if (p.body) chunks.push(...p.body);
    }
    t.pending.clear();
    if (!this.skipping) chunks.push(...t.partial.splice(0));
    this.feed(chunks);
  }

  push(chunk: Uint8Array): void {
    if (!this.session) this.queue.push(chunk);
    else this.route(chunk);
  }

  private route(chunk: Uint8Array): void {
    const p = this.skipping;
    if (p) {
      const t = this.tracker;
      let pos = 0;
      if (!t.inBody) {
        // Header seen, body line not started yet: find its opening quote.
        while (pos < chunk.length && chunk[pos] !== 34) pos++;
        if (pos === chunk.length) return;
        t.inBody = true;
        pos++;
      }
      const nl = chunk.indexOf(NL, pos);
      if (nl < 0) return;
      t.inBody = false;
      t.awaitingBody = null;
      this.skipping = null;
      this.write(Buffer.from(encodeErr(p.id, "gostash: the daemon went away before storing this output")));
      chunk = chunk.subarray(nl + 1);
    }
    if (chunk.length) this.feed([chunk]);
  }

  private feed(chunks: Uint8Array[]): void {
    try {
      for (const c of chunks) if (c.length) this.session!.push(c);
    } catch (err) {
      writeStderr(`gostash connect: ${(err as Error).message}; stopping\n`);
      this.finish(1);
    }
  }

  end(): void {
    this.ended = true;
    if (this.session) void this.close();
  }

  private async close(): Promise<void> {
    try {
      await this.session!.end();
    } catch (err) {
      writeStderr(`gostash connect: ${(err as Error).message}\n`);
    }
    this.finish(0);
  }
}
