// What can go wrong talking to a bucket, as one error type whose kind
// decides what the caller does: every kind is a cache miss (or a skipped
// upload) for the build, never a failed build.

export type RemoteErrorKind =
  /** No answer (or no next body chunk) within --s3-timeout. */
  | "timeout"
  /** Connection refused, reset, DNS, TLS, or a body cut short. */
  | "network"
  /** The server answered with an error status (5xx, 4xx other than auth). */
  | "http"
  /** 401/403: credentials, permissions, or a missing key the caller may not list. */
  | "auth"
  /** The object is not what its layout promises (metadata, size, checksum). */
  | "badobject"
  /** Not sent: the circuit breaker is open after repeated failures. */
  | "unavailable";

export class RemoteError extends Error {
  override name = "RemoteError";
  constructor(
    readonly kind: RemoteErrorKind,
    message: string,
    /** The HTTP status, when the server answered. */
    readonly status?: number,
    /** The S3 error code from the answer's XML (e.g. InvalidBucketName). */
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Does this say the bucket itself is unwell (counts against the breaker)? */
  get backendFault(): boolean {
    return this.kind === "timeout" || this.kind === "network" || (this.kind === "http" && (this.status ?? 500) >= 500);
  }
}

/** Any error as a RemoteError of the network kind, keeping its cause. */
export function asRemoteError(err: unknown, what: string): RemoteError {
  if (err instanceof RemoteError) return err;
  return new RemoteError("network", `${what}: ${(err as Error)?.message ?? err}`, undefined, undefined, { cause: err });
}
