// What the proxy refuses to store or serve, and `mod import` rejects: a
// module file that is malformed, too large, or not what was asked for
// (validate.ts, zip.ts, dirhash.ts). Callers tell it from failures of the
// network or the disk, which are retried or reported otherwise.

export class ValidationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ValidationError";
  }
}
