// An optional line at the start of a connection's input: the auth line a
// bridge sends to a daemon that needs no token (auth-handshake.ts), the
// hello (daemon/hello.ts). Bytes are held only while they may still be the
// start of that line; as soon as they cannot, they are the conversation's,
// so a client that does not send the line is not kept waiting.

const NL = 10;
const NONE = new Uint8Array(0);

export type FirstLineStep =
  /** The bytes so far may still be the start of the line. */
  | { kind: "wait" }
  /** line: the line without its newline, or null if the input does not start with one; rest: what follows it. */
  | { kind: "done"; line: string | null; rest: Uint8Array };

export class FirstLineSniffer {
  /** Held bytes (copied: a socket chunk's memory is not ours to keep). */
  private buf: Buffer | null = null;
  private done = false;

  constructor(
    private readonly prefix: string,
    private readonly maxLine: number,
  ) {}

  /** The next bytes from the client. */
  feed(chunk: Uint8Array): FirstLineStep {
    if (this.done) return { kind: "done", line: null, rest: chunk };
    const buf = this.buf ? Buffer.concat([this.buf, chunk]) : Buffer.from(chunk);
    if (!this.mayBeLine(buf)) return this.finish(null, buf);
    const nl = buf.indexOf(NL);
    if (nl >= 0) return this.finish(buf.subarray(0, nl).toString("utf8"), buf.subarray(nl + 1));
    if (buf.length > this.maxLine) return this.finish(null, buf);
    this.buf = buf;
    return { kind: "wait" };
  }

  /** The client sent EOF: what is held (a line cut short included) is the conversation's. */
  end(): FirstLineStep {
    return this.finish(null, this.done ? NONE : (this.buf ?? NONE));
  }

  private finish(line: string | null, rest: Uint8Array): FirstLineStep {
    this.done = true;
    this.buf = null;
    return { kind: "done", line, rest };
  }

  /** buf could still be (the start of) the line. */
  private mayBeLine(buf: Buffer): boolean {
    const n = Math.min(buf.length, this.prefix.length);
    return buf.subarray(0, n).toString("latin1") === this.prefix.slice(0, n);
  }
}
