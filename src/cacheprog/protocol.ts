// Wire types of the GOCACHEPROG protocol (cmd/go/internal/cacheprog).
//
// Facts that shape this code (see docs/architecture.md, "Protocol facts"):
// - []byte fields are standard base64 with padding, not hex.
// - Go 1.21-1.23 call the output "ObjectID"; 1.24+ call it "OutputID".
// - Every request is followed by an empty line; a put with BodySize > 0 is
//   followed by a line holding a JSON string of base64 body.
// - Responses go out in any order and are matched by ID.

export type Command = "get" | "put" | "close";

export const KNOWN_COMMANDS: readonly Command[] = ["get", "put", "close"];

/** The first line a plugin prints; `go` waits for it without a timeout. */
export const CAPABILITY_LINE = '{"ID":0,"KnownCommands":["get","put","close"]}\n';

/** A request as it arrives, IDs already decoded to lowercase hex. */
export interface Request {
  id: number;
  command: string;
  actionID?: string;
  outputID?: string;
  bodySize: number;
}

/** What a get hit needs to tell `go`. */
export interface Hit {
  outputID: string; // hex
  size: number;
  /** When the entry was put, in Unix nanoseconds. */
  timeNanos: bigint;
  diskPath: string;
  /**
   * Where a hit came from when not the local disk (a pack or a single object
   * of a shared tier). Never sent: only for the counts of the layers above.
   */
  from?: "pack" | "remote";
}

export function hexToBase64(hex: string): string {
  return Buffer.from(hex, "hex").toString("base64");
}

/** RFC 3339 with nanoseconds, as Go's time.Time marshals to JSON. */
export function rfc3339Nano(nanos: bigint): string {
  if (nanos < 0n) nanos = 0n;
  // Whole seconds through Date (exact below 2^53 ms), the fraction as digits.
  const digits = nanos.toString().padStart(10, "0");
  const secs = Number(digits.slice(0, -9));
  return `${new Date(secs * 1000).toISOString().slice(0, 19)}.${digits.slice(-9)}Z`;
}

export function encodeHit(id: number, hit: Hit): string {
  return `{"ID":${id},"OutputID":"${hexToBase64(hit.outputID)}","Size":${hit.size},"Time":"${rfc3339Nano(hit.timeNanos)}","DiskPath":${JSON.stringify(hit.diskPath)}}\n`;
}

export function encodeMiss(id: number): string {
  return `{"ID":${id},"Miss":true}\n`;
}

export function encodePut(id: number, diskPath: string): string {
  return `{"ID":${id},"DiskPath":${JSON.stringify(diskPath)}}\n`;
}

export function encodeErr(id: number, message: string): string {
  return `{"ID":${id},"Err":${JSON.stringify(message)}}\n`;
}

export function encodeEmpty(id: number): string {
  return `{"ID":${id}}\n`;
}
