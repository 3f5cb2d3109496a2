// The bucket's last failure, kept for the status page: the client logs the
// first failure of a run and only counts the rest (client.ts), so without
// this the page could say "s3_errors: 12" but not what went wrong. It also
// remembers whether the latest request succeeded, so "failing" means
// failing now, not "failed once an hour ago".

import type { RemoteError } from "./errors.ts";

export interface BucketFailure {
  /** When it happened (ms since the epoch). */
  at: number;
  /** The error as logged ("s3: get ab/...: HTTP 503 SlowDown"). */
  message: string;
  kind: string;
  status?: number;
  code?: string;
  /** The underlying error's message (a refused connection, a TLS failure), if any. */
  cause?: string;
  /** What to check, as the first failure's log line says it. */
  hint?: string;
}

export class LastBucketError {
  private last: BucketFailure | null = null;
  private failing = false;
  private lastSuccessAt = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** A request failed: keep it (with its cause and hint) as the last failure. */
  failed(err: RemoteError, hint = ""): void {
    const cause = causeText(err.cause);
    this.last = {
      at: this.now(),
      message: err.message,
      kind: err.kind,
      ...(err.status !== undefined ? { status: err.status } : {}),
      ...(err.code ? { code: err.code } : {}),
      ...(cause ? { cause } : {}),
      ...(hint ? { hint: hint.replace(/^\s*\(hint: (.*)\)$/, "$1") } : {}),
    };
    this.failing = true;
  }

  /** A request got its answer (a 404 is an answer). */
  answered(): void {
    this.failing = false;
    this.lastSuccessAt = this.now();
  }

  get value(): BucketFailure | null {
    return this.last;
  }

  /** Did the latest request fail? */
  get failingNow(): boolean {
    return this.failing;
  }

  /** When a request last succeeded (0: never). */
  get lastSuccess(): number {
    return this.lastSuccessAt;
  }
}

/** The chain of causes as one line ("ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9"), or "". */
function causeText(cause: unknown): string {
  const parts: string[] = [];
  for (let c = cause, depth = 0; c != null && depth < 3; c = (c as { cause?: unknown }).cause, depth++) {
    const e = c as { code?: unknown; message?: unknown };
    const text = typeof e.message === "string" ? e.message : String(c);
    parts.push(typeof e.code === "string" && !text.includes(e.code) ? `${e.code}: ${text}` : text);
  }
  return parts.join(" <- ");
}
