// Incremental decoder for the request stream `go` writes to a GOCACHEPROG
// child. It is push-based (feed it chunks as they arrive from stdin or a
// socket) so that direct mode and the daemon share it, and it never holds a
// put body in memory: base64 is decoded in place, chunk by chunk, into the
// sink the caller opened for that put.
//
// Framing (cmd/go/internal/cache/prog.go, writeToChild):
//   <json request>\n\n                      every request
//   "<standard base64 of body>"\n           only when BodySize > 0
// Anything else is a framing error: the stream cannot be resynchronised, so
// the caller must stop reading it.
//
// Backpressure: after each complete request the decoder asks `pause()`; if
// it says yes, push() stops there and returns how many bytes it consumed.
// The caller keeps the rest and pushes it again later.

import type { Request } from "./protocol.ts";

export class FramingError extends Error {
  override name = "FramingError";
}

/** Where the decoded bytes of one put body go. */
export interface BodySink {
  /** bytes are the sink's to keep: the decoder never writes to them again. */
  write(bytes: Uint8Array): void;
}

export interface DecoderEvents {
  /** A complete request without a body (get, close, zero-size put, ...). */
  request(req: Request): void;
  /** A put header with BodySize > 0; returns where its body bytes go. */
  bodyStart(req: Request): BodySink;
  /** The body ended; `written` is the number of decoded bytes. */
  bodyEnd(req: Request, written: number, error: string | null): void;
  /** Asked after each complete request: stop consuming input for now? */
  pause?(): boolean;
}

const NL = 10;
const QUOTE = 34;
/** A request header is a few hundred bytes; anything this long is not one (framing.ts agrees). */
export const MAX_HEADER = 1 << 20;

const enum State {
  Line,
  BodyOpen,
  Body,
}

export const isWhitespace = (b: number): boolean => b === NL || b === 13 || b === 32 || b === 9;

export class RequestDecoder {
  private state = State.Line;
  private partial: Uint8Array[] = [];
  private partialLen = 0;
  private body: { req: Request; sink: BodySink; carry: string; written: number; error: string | null } | null = null;
  private failed: FramingError | null = null;

  constructor(private readonly events: DecoderEvents) {}

  /** True while a put body is being read (EOF now would truncate it). */
  get midRequest(): boolean {
    return this.state !== State.Line || this.partialLen > 0;
  }

  /**
   * Feed the next chunk; returns the bytes consumed (all of them unless
   * pause() said stop). Throws FramingError once; later calls rethrow it.
   */
  push(chunk: Uint8Array): number {
    if (this.failed) throw this.failed;
    try {
      return this.consume(chunk);
    } catch (err) {
      this.failed = err instanceof FramingError ? err : new FramingError(String(err));
      throw this.failed;
    }
  }

  /** Signal end of input; throws if it cut a request in half. */
  end(): void {
    if (this.failed) return;
    if (this.state === State.Body || this.state === State.BodyOpen) {
      throw new FramingError(`cacheprog: input ended inside the body of put request ${this.body?.req.id}`);
    }
    if (this.partialLen > 0) {
      const rest = Buffer.concat(this.partial).toString("latin1").trim();
      this.partial = [];
      this.partialLen = 0;
      if (rest) this.handleLine(rest);
    }
  }

  private consume(chunk: Uint8Array): number {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      switch (this.state) {
        case State.Line: {
          const nl = chunk.indexOf(NL, pos);
          if (nl < 0) {
            // A copy (Buffer#slice would be a view): the caller may reuse
            // the chunk's memory (stdio.ts reads into one buffer; socket
            // chunks are not ours to keep).
            this.partial.push(new Uint8Array(chunk.subarray(pos)));
            this.partialLen += len - pos;
            if (this.partialLen > MAX_HEADER) throw new FramingError("cacheprog: request line longer than 1 MiB");
            return len;
          }
          let line: string;
          if (this.partialLen > 0) {
            this.partial.push(chunk.subarray(pos, nl));
            line = Buffer.concat(this.partial).toString("utf8");
            this.partial = [];
            this.partialLen = 0;
          } else {
            line = Buffer.from(chunk.buffer, chunk.byteOffset + pos, nl - pos).toString("utf8");
          }
          pos = nl + 1;
          this.handleLine(line);
          if (this.state === State.Line && this.events.pause?.()) return pos;
          break;
        }
        case State.BodyOpen: {
          const b = chunk[pos]!;
          pos++;
          if (b === QUOTE) this.state = State.Body;
          else if (!isWhitespace(b)) {
            throw new FramingError(
              `cacheprog: expected the body of put request ${this.body!.req.id} (a JSON string), found byte 0x${b.toString(16)}`,
            );
          }
          break;
        }
        case State.Body: {
          const q = chunk.indexOf(QUOTE, pos);
          const end = q < 0 ? len : q;
          const nl = chunk.indexOf(NL, pos);
          if (nl >= 0 && nl < end) {
            throw new FramingError(`cacheprog: body of put request ${this.body!.req.id} ends without its closing quote`);
          }
          this.bodyBytes(chunk, pos, end);
          if (q < 0) return len;
          pos = q + 1;
          this.finishBody();
          if (this.events.pause?.()) return pos;
          break;
        }
      }
    }
    return len;
  }

  private handleLine(raw: string): void {
    const line = raw.trim();
    if (line === "") return;
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch (err) {
      throw new FramingError(`cacheprog: request is not JSON: ${truncate(line)} (${(err as Error).message})`);
    }
    const req = toRequest(msg, line);
    if (req.command === "put" && req.bodySize > 0) {
      const sink = this.events.bodyStart(req);
      this.body = { req, sink, carry: "", written: 0, error: null };
      this.state = State.BodyOpen;
    } else {
      this.events.request(req);
    }
  }

  private bodyBytes(chunk: Uint8Array, start: number, end: number): void {
    if (end <= start) return;
    const body = this.body!;
    // base64 decodes in quanta of 4 characters; keep the remainder for later.
    let text = bodyText.decode(chunk.subarray(start, end));
    if (body.carry) {
      text = body.carry + text;
      body.carry = "";
    }
    const whole = text.length - (text.length % 4);
    if (whole < text.length) body.carry = text.slice(whole);
    if (whole === 0) return;
    this.emitDecoded(whole === text.length ? text : text.slice(0, whole));
  }

  private emitDecoded(b64: string): void {
    const body = this.body!;
    const bytes = decodeStrict(b64);
    if (!bytes) {
      body.error ??= "body is not standard base64";
      return;
    }
    body.written += bytes.length;
    if (body.error) return;
    if (body.written > body.req.bodySize) {
      body.error = `body is longer than BodySize ${body.req.bodySize}`;
      return;
    }
    body.sink.write(bytes);
  }

  private finishBody(): void {
    const body = this.body!;
    if (body.carry) {
      const tail = body.carry;
      body.carry = "";
      this.emitDecoded(tail);
    }
    if (!body.error && body.written !== body.req.bodySize) {
      body.error = `body has ${body.written} bytes but BodySize is ${body.req.bodySize}`;
    }
    this.body = null;
    this.state = State.Line;
    this.events.bodyEnd(body.req, body.written, body.error);
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Body text to a string: ASCII is all it may hold, and anything else turns into a character base64 rejects. */
const bodyText = new TextDecoder();

/**
 * Whole quanta of standard base64, decoded; null if they are not. The
 * standard alphabet only (Buffer.from would take base64url's "-" and "_",
 * and skip junk, turning a corrupt body into wrong bytes), padding only at
 * the end, with its spare bits zero. One native pass into a buffer of
 * its own: a cold `go build std` sends 210 MiB of base64, and a latin1
 * string, a regular expression and Buffer.from took 0.5 s of the main
 * thread for it, three times this. Whitespace is skipped (the standard
 * says so); it never changes the bytes, and any that breaks a quantum
 * fails the strict last one.
 */
function decodeStrict(b64: string): Uint8Array | null {
  const out = Buffer.allocUnsafe(Math.ceil(b64.length / 4) * 3);
  try {
    const { read, written } = out.setFromBase64(b64, { lastChunkHandling: "strict" });
    return read === b64.length ? out.subarray(0, written) : null;
  } catch {
    return null;
  }
}

function truncate(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}...` : s;
}

/** A 32-byte ID as the protocol sends it (standard base64) to lowercase hex; null if it is not one. */
export function idHex(v: unknown): string | null {
  if (typeof v !== "string") return null;
  const bytes = Buffer.from(v, "base64");
  return bytes.length === 32 && BASE64.test(v) ? bytes.toString("hex") : null;
}

function decodeID(v: unknown, field: string, id: number): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new FramingError(`cacheprog: request ${id}: ${field} must be a base64 string`);
  // Not a framing error when it is no ID: the request is well formed but unusable. Marked ("") so
  // the dispatcher answers it with an error instead of touching the store.
  return idHex(v) ?? "";
}

function toRequest(msg: unknown, line: string): Request {
  if (typeof msg !== "object" || msg === null || Array.isArray(msg)) {
    throw new FramingError(`cacheprog: request is not a JSON object: ${truncate(line)}`);
  }
  const m = msg as Record<string, unknown>;
  const id = m.ID;
  if (typeof id !== "number" || !Number.isSafeInteger(id)) {
    throw new FramingError(`cacheprog: request has no integer ID: ${truncate(line)}`);
  }
  const command = typeof m.Command === "string" ? m.Command : "";
  const size = m.BodySize ?? 0;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new FramingError(`cacheprog: request ${id}: BodySize must be a non-negative integer`);
  }
  return {
    id,
    command,
    actionID: decodeID(m.ActionID, "ActionID", id),
    // Go 1.21-1.23 (GOEXPERIMENT=cacheprog) call it ObjectID.
    outputID: decodeID(m.OutputID ?? m.ObjectID, "OutputID", id),
    bodySize: size,
  };
}
