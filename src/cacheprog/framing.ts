// Raw-byte framing of a GOCACHEPROG conversation, for code that forwards it
// instead of serving it (the `gostash connect` bridge, src/daemon/bridge.ts).
//
// Requests (framed as decoder.ts describes): RequestStreamTracker follows
// the stream `go` writes just enough to know which requests are in flight,
// with their raw bytes, and where the next request starts, so that the
// unanswered ones can be sent again (to a daemon dialled again, or to a
// local session taking over). Header lines are parsed; body lines are only
// scanned, with memchr-speed newline searches, and kept as references to
// the input chunks (up to RETAIN_BODY each). It is deliberately not built on
// RequestDecoder: that one decodes and checks every body's base64, work the
// bridge must not do on its hot path (the daemon does it once).
//
// Responses: LineAssembler cuts a byte stream into whole lines, and
// responseID reads the ID of a response line without parsing its JSON.

import { isWhitespace, MAX_HEADER } from "./decoder.ts";

const NL = 10;
const QUOTE = 34;

/** Put bodies larger than this (decoded) are not kept for a replay. */
export const RETAIN_BODY = 32 << 20;

/** A request the tracker saw go out and no answer for yet. */
export interface TrackedRequest {
  id: number;
  /** The header line as received (without its newline). */
  header: string;
  /** Raw body bytes (from the opening quote), or null if too large to keep. */
  body: Uint8Array[] | null;
  bodySize: number;
}

/** What sending the unanswered requests again takes. */
export interface Replay {
  /** The kept requests' bytes, in stream order, then a header cut short. */
  bytes: Uint8Array[];
  /** Unanswered puts whose body was too large to keep and has ended: they cannot be sent again. */
  unkept: TrackedRequest[];
  /** Such a put whose body is still arriving: the rest of its body must be skipped. */
  cutBody: BodyRemainder | null;
}

export class RequestStreamTracker {
  /** Unanswered requests, in stream order. */
  private readonly pending = new Map<number, TrackedRequest>();
  /** Bytes of a header line not yet ended. */
  private partial: Uint8Array[] = [];
  private partialLen = 0;
  /** Inside a body line (after its opening quote). */
  private inBody = false;
  /** A put header was seen; its body line has not ended yet. */
  private awaitingBody: TrackedRequest | null = null;
  /** The stream is not GOCACHEPROG framing (the daemon will hang up on it too). */
  broken = false;
  /** The ID of `go`'s close request, once seen. */
  closeID: number | null = null;
  /** Requests whose header was seen. */
  seen = 0;
  /**
   * Called for each get as its header is seen, with its ActionID as sent
   * (base64); it may answer the get itself (answered(id)) before it goes on.
   */
  onGet: ((id: number, actionID: unknown) => void) | null = null;

  /** How many requests went out without an answer yet. */
  get unanswered(): number {
    return this.pending.size;
  }

  /** Some request has started but not ended in what was seen so far. */
  get midRequest(): boolean {
    return this.partialLen > 0 || this.inBody || this.awaitingBody !== null;
  }

  /** Every unanswered request could be sent again (no body was too large to keep). */
  get replayable(): boolean {
    for (const p of this.pending.values()) if (p.bodySize > 0 && p.body === null) return false;
    return true;
  }

  /** An answer to `id` arrived; false if no such request was waiting. */
  answered(id: number): boolean {
    return this.pending.delete(id);
  }

  /**
   * The unanswered requests, for sending again; the tracker is left as it is
   * (what arrives later continues the request cut short).
   */
  replay(): Replay {
    const bytes: Uint8Array[] = [];
    const unkept: TrackedRequest[] = [];
    let cutBody: BodyRemainder | null = null;
    for (const p of this.pending.values()) {
      if (p.bodySize > 0 && p.body === null) {
        if (p === this.awaitingBody) cutBody = new BodyRemainder(p.id, this.inBody);
        else unkept.push(p);
        continue;
      }
      bytes.push(Buffer.from(`${p.header}\n\n`));
      if (p.body) bytes.push(...p.body);
    }
    if (!cutBody) bytes.push(...this.partial);
    return { bytes, unkept, cutBody };
  }

  /** Follows the next chunk of the request stream (kept by reference where it is body bytes). */
  observe(chunk: Uint8Array): void {
    let pos = 0;
    while (pos < chunk.length && !this.broken) {
      pos = this.inBody ? this.bodyBytes(chunk, pos) : this.lineBytes(chunk, pos);
    }
  }

  /** Body bytes from pos to the end of the body line (or of the chunk); returns where it stopped. */
  private bodyBytes(chunk: Uint8Array, pos: number): number {
    const nl = chunk.indexOf(NL, pos);
    const end = nl < 0 ? chunk.length : nl + 1;
    this.awaitingBody?.body?.push(chunk.subarray(pos, end));
    if (nl >= 0) {
      this.inBody = false;
      this.awaitingBody = null;
    }
    return end;
  }

  /** Header bytes (or the blank lines between requests) from pos; returns where it stopped. */
  private lineBytes(chunk: Uint8Array, pos: number): number {
    if (this.partialLen === 0) {
      const b = chunk[pos]!;
      if (isWhitespace(b)) return pos + 1;
      if (b === QUOTE) {
        this.inBody = true;
        return pos; // the quote itself is part of the body bytes
      }
    }
    const nl = chunk.indexOf(NL, pos);
    const end = nl < 0 ? chunk.length : nl;
    // Copied: a header is small, and the chunk must not be kept alive for it.
    this.partial.push(new Uint8Array(chunk.subarray(pos, end)));
    this.partialLen += end - pos;
    if (nl < 0) {
      if (this.partialLen > MAX_HEADER) this.broken = true;
      return end;
    }
    const line = Buffer.concat(this.partial).toString("utf8");
    this.partial = [];
    this.partialLen = 0;
    this.header(line);
    return nl + 1;
  }

  private header(line: string): void {
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(line);
    } catch {
      this.broken = true;
      return;
    }
    if (typeof m !== "object" || m === null || typeof m.ID !== "number") {
      this.broken = true;
      return;
    }
    const size = typeof m.BodySize === "number" ? m.BodySize : 0;
    if (m.Command === "close") this.closeID = m.ID;
    const p: TrackedRequest = { id: m.ID, header: line, body: size > 0 && size <= RETAIN_BODY ? [] : null, bodySize: size };
    this.seen++;
    this.pending.set(p.id, p);
    if (size > 0) this.awaitingBody = p;
    else if (m.Command === "get") this.onGet?.(p.id, m.ActionID);
  }
}

/** The rest of a put body that was not kept: skipped until its body line ends. */
export class BodyRemainder {
  constructor(
    readonly id: number,
    /** The opening quote has been seen. */
    private started: boolean,
  ) {}

  /** Skips body bytes; returns what follows the body line, or null if the chunk was all body. */
  skip(chunk: Uint8Array): Uint8Array | null {
    let pos = 0;
    if (!this.started) {
      // Header seen, body line not started yet: find its opening quote.
      pos = chunk.indexOf(QUOTE);
      if (pos < 0) return null;
      this.started = true;
      pos++;
    }
    const nl = chunk.indexOf(NL, pos);
    return nl < 0 ? null : chunk.subarray(nl + 1);
  }
}

/** Cuts a byte stream into whole lines; the start of a line not yet ended is kept (copied). */
export class LineAssembler {
  private partial: Uint8Array | null = null;

  /** The whole lines completed by chunk (ending with a newline), or null if none. */
  push(chunk: Uint8Array): Uint8Array | null {
    let data = chunk;
    if (this.partial) {
      data = Buffer.concat([this.partial, chunk]);
      this.partial = null;
    }
    const last = data.lastIndexOf(NL);
    // Kept parts are copies: a socket's chunk memory is not ours to keep.
    if (last < 0) {
      this.partial = data === chunk ? new Uint8Array(chunk) : data;
      return null;
    }
    if (last + 1 < data.length) this.partial = new Uint8Array(data.subarray(last + 1));
    return data.subarray(0, last + 1);
  }

  /** Forget a line cut short (the stream it came from is abandoned). */
  reset(): void {
    this.partial = null;
  }
}

/** The ID of the response line buf[start..end) (its first `"ID":n`), or null. */
export function responseID(buf: Uint8Array, start: number, end: number): number | null {
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
