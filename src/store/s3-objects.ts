// The shared tier's objects: one per action, fetched with one GET.
//
// Layout (in the bucket, under the optional --prefix; s3/client.ts adds it):
//
//   key   <xx>/<actionhex>            <xx> = first byte of the action ID in hex
//   body  the output bytes, zstd-compressed when that saves at least 5%
//   user metadata (x-amz-meta-*):
//     gostash-output    output ID, 64 lowercase hex (SHA-256 of the output)
//     gostash-size      output size in bytes (uncompressed), decimal
//     gostash-time      time of the original put, Unix nanoseconds, decimal
//     gostash-encoding  "identity" or "zstd"
//     gostash-cost      optional: what computing the action took, in ms
//                       (buildcache/costs.ts); a later hit saved that much
//
// Other layouts in the same bucket: packs/ (packs.ts: many outputs in one
// object, with the same metadata per entry), toolchains/ (toolchain-marks.ts:
// which go toolchains the bucket holds outputs of) and mod/ (the module
// mirror, modproxy).
//
// A remote hit is a single round trip: the metadata arrives in the headers
// and the body follows. The body is hashed while it lands in the local
// store and accepted only if its SHA-256 and size match the metadata;
// anything else is a RemoteError("badobject"): a miss, never served.
// Objects are written with one PUT, which S3-compatible stores make visible
// atomically, so an interrupted upload never leaves a half object behind.

import { RemoteError } from "../s3/errors.ts";
import { zstdDeclaredSize } from "../util/zstd-bounded.ts";
import type { S3Client, S3Object } from "../s3/client.ts";
import type { DiskPut, DiskStore, StoredOutput } from "./disk.ts";

export type Encoding = "identity" | "zstd";

export interface ObjectMeta {
  outputID: string;
  size: number;
  timeNanos: bigint;
  encoding: Encoding;
  /** Milliseconds the action took to compute, when measured. */
  costMs?: number;
}

/** What an upload needs: the output as it is on the local disk. */
export interface OutputFile {
  actionID: string;
  outputID: string;
  size: number;
  timeNanos: bigint;
  diskPath: string;
  costMs?: number;
  /** The output's bytes, when the put kept them: not read back from diskPath. */
  bytes?: Uint8Array;
}

/** Outputs in this range are zstd-compressed when that saves at least 5%. */
const COMPRESS_MIN = 512;
/**
 * Level 1: the outputs of a cold `go build std` (160 MiB) take 0.42 s of
 * CPU and come to 41.9 MiB, against 0.67 s and 40.0 MiB at level 3. A
 * single object is the fallback (packs carry a fresh machine's data, at
 * their own level: pack-file.ts), and its CPU is spent while the go command
 * compiles on the same cores.
 */
const SINGLE_LEVEL = 1;
const COMPRESS_MAX = 64 << 20;
/** A compressed body larger than this is not buffered for decompression. */
export const MAX_COMPRESSED_BODY = COMPRESS_MAX + (1 << 20);
/** Outputs larger than this are stored as they are (never compressed, never packed). */
export const MAX_ENCODED_OUTPUT = COMPRESS_MAX;
/** zstd bodies up to this size are decompressed on the calling thread. */
const SYNC_DECOMPRESS_MAX = 16 << 10;

const META_OUTPUT = "gostash-output";
const META_SIZE = "gostash-size";
const META_TIME = "gostash-time";
const META_ENCODING = "gostash-encoding";
const META_COST = "gostash-cost";

/** The object name of an action (without the prefix). */
export function actionObject(actionID: string): string {
  return `${actionID.slice(0, 2)}/${actionID}`;
}

export function encodeMeta(m: ObjectMeta): Record<string, string> {
  return {
    [META_OUTPUT]: m.outputID,
    [META_SIZE]: String(m.size),
    [META_TIME]: String(m.timeNanos),
    [META_ENCODING]: m.encoding,
    ...(m.costMs !== undefined ? { [META_COST]: String(m.costMs) } : {}),
  };
}

/** Parses object metadata; null if it is missing or malformed. */
export function decodeMeta(md: Record<string, string> | undefined): ObjectMeta | null {
  if (!md) return null;
  const outputID = md[META_OUTPUT];
  const size = md[META_SIZE];
  const time = md[META_TIME];
  const encoding = md[META_ENCODING] ?? "identity";
  if (!outputID || !/^[0-9a-f]{64}$/.test(outputID)) return null;
  if (!size || !/^\d{1,15}$/.test(size)) return null;
  if (!time || !/^\d{1,20}$/.test(time)) return null;
  if (encoding !== "identity" && encoding !== "zstd") return null;
  // The cost is only an estimate: a malformed one is dropped, the object stays good.
  const cost = md[META_COST];
  const costMs = cost && /^\d{1,10}$/.test(cost) ? Number(cost) : undefined;
  return { outputID, size: Number(size), timeNanos: BigInt(time), encoding, ...(costMs !== undefined ? { costMs } : {}) };
}

/** The body an output is uploaded as: zstd when it saves at least 5%, else as is. */
export async function encodeBody(bytes: Uint8Array, compress: boolean): Promise<{ body: Uint8Array; encoding: Encoding }> {
  if (compress && bytes.length >= COMPRESS_MIN && bytes.length <= COMPRESS_MAX) {
    const z = await Bun.zstdCompress(bytes, { level: SINGLE_LEVEL });
    if (z.length < bytes.length * 0.95) return { body: z, encoding: "zstd" };
  }
  return { body: bytes, encoding: "identity" };
}

/** An output encoded for the bucket: the body as sent and the metadata that describes it. */
export interface EncodedOutput {
  body: Uint8Array;
  meta: ObjectMeta;
}

/**
 * Reads and encodes one output as it is uploaded (single object or pack
 * entry). Null when the file is no longer what was put (trimmed or cleaned
 * away since): nothing to upload.
 */
export async function encodeOutput(f: OutputFile, compress: boolean): Promise<EncodedOutput | null> {
  let bytes: Uint8Array;
  try {
    bytes = f.bytes ?? (f.size === 0 ? new Uint8Array(0) : await Bun.file(f.diskPath).bytes());
  } catch {
    return null;
  }
  if (bytes.length !== f.size) return null;
  const { body, encoding } = await encodeBody(bytes, compress);
  return { body, meta: { outputID: f.outputID, size: f.size, timeNanos: f.timeNanos, encoding, costMs: f.costMs } };
}

/**
 * Uploads one output. Returns what was sent, or null when the file is no
 * longer what was put: nothing to upload.
 */
export async function uploadOutput(client: S3Client, f: OutputFile, compress: boolean): Promise<EncodedOutput | null> {
  const enc = await encodeOutput(f, compress);
  if (!enc) return null;
  await client.put(actionObject(f.actionID), enc.body, { metadata: encodeMeta(enc.meta) });
  return enc;
}

/**
 * Downloads an action's output into the local store, verified. Null if the
 * bucket has no object for it; throws RemoteError (badobject for anything
 * that does not check out). `received` reports the bytes that came over
 * the wire.
 */
export async function downloadOutput(client: S3Client, disk: DiskStore, actionID: string, received?: (n: number) => void): Promise<(StoredOutput & { costMs?: number }) | null> {
  const obj = await client.get(actionObject(actionID));
  if (!obj) return null;
  const meta = decodeMeta(obj.metadata);
  const key = client.key(actionObject(actionID));
  if (!meta) {
    obj.cancel();
    throw new RemoteError("badobject", `s3: get ${key}: object has no valid gostash metadata`);
  }
  const bad = (why: string): never => {
    obj.cancel();
    throw new RemoteError("badobject", `s3: ${key}: ${why}`);
  };
  const out = await landVerified(disk, actionID, meta, obj, bad, received);
  return meta.costMs === undefined ? out : { ...out, costMs: meta.costMs };
}

/** Streams a body into the store, committed only if its SHA-256 and size match meta. */
export async function landVerified(
  disk: DiskStore,
  actionID: string,
  meta: ObjectMeta,
  obj: Pick<S3Object, "body" | "contentLength">,
  bad: (why: string) => never,
  received?: (n: number) => void,
): Promise<StoredOutput> {
  if (meta.encoding === "identity" && obj.contentLength !== undefined && obj.contentLength !== meta.size) {
    bad(`body is ${obj.contentLength} bytes, metadata says ${meta.size}`);
  }
  if (meta.encoding === "zstd" && obj.contentLength !== undefined && obj.contentLength > MAX_COMPRESSED_BODY) {
    bad(`compressed body of ${obj.contentLength} bytes is too large`);
  }
  const hasher = new Bun.CryptoHasher("sha256");
  let w: DiskPut | null = null;
  try {
    const landing: Landing = { disk, actionID, meta, hasher, bad, received };
    w = meta.encoding === "identity" ? await landIdentity(landing, obj.body) : await landZstd(landing, obj.body);
    if (w.written !== meta.size) bad(`body is ${w.written} bytes, metadata says ${meta.size}`);
    const sum = hasher.digest("hex");
    if (sum !== meta.outputID) bad(`SHA-256 of the body is ${sum}, not the output ID ${meta.outputID}`);
    const out = w.commit(meta.timeNanos);
    w = null;
    return out;
  } finally {
    w?.abort();
  }
}

/** One body being landed: where it goes, what it must be, and how it is checked. */
interface Landing {
  disk: DiskStore;
  actionID: string;
  meta: ObjectMeta;
  hasher: Bun.CryptoHasher;
  bad: (why: string) => never;
  received?: (n: number) => void;
}

async function landIdentity({ disk, actionID, meta, hasher, bad, received }: Landing, body: AsyncIterable<Uint8Array>): Promise<DiskPut> {
  const w = disk.put(actionID, meta.outputID, meta.size);
  try {
    for await (const chunk of body) {
      received?.(chunk.length);
      if (w.written + chunk.length > meta.size) bad(`body is longer than the ${meta.size} bytes its metadata says`);
      hasher.update(chunk);
      w.write(chunk);
    }
    return w;
  } catch (err) {
    w.abort();
    throw err;
  }
}

async function landZstd({ disk, actionID, meta, hasher, bad, received }: Landing, body: AsyncIterable<Uint8Array>): Promise<DiskPut> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of body) {
    n += chunk.length;
    received?.(chunk.length);
    if (n > MAX_COMPRESSED_BODY) bad("compressed body is too large");
    parts.push(chunk);
  }
  const out = await decompressBody(Buffer.concat(parts), meta, bad);
  hasher.update(out);
  const w = disk.put(actionID, meta.outputID, meta.size);
  w.write(out);
  return w;
}

/**
 * A zstd body decompressed, checked against the size its metadata says:
 * first the size its frame headers declare (a body that declares more, or
 * nothing, is not decompressed: util/zstd-bounded.ts), then the output.
 */
export async function decompressBody(body: Uint8Array, meta: ObjectMeta, bad: (why: string) => never): Promise<Uint8Array> {
  const declared = zstdDeclaredSize(body);
  if (declared === null) return bad("zstd body does not declare its size, or is not whole frames");
  if (declared !== meta.size) return bad(`zstd body declares ${declared} bytes, metadata says ${meta.size}`);
  let out: Uint8Array;
  try {
    // Small bodies inline: a trip through the thread pool costs more than they do.
    out = body.length <= SYNC_DECOMPRESS_MAX ? Bun.zstdDecompressSync(body) : await Bun.zstdDecompress(body);
  } catch (err) {
    return bad(`zstd body does not decompress: ${(err as Error)?.message ?? err}`);
  }
  if (out.length !== meta.size) bad(`body decompresses to ${out.length} bytes, metadata says ${meta.size}`);
  return out;
}

/** Checks a whole decoded output against its metadata: size, then SHA-256. Throws what bad() throws. */
export function verifyOutput(meta: Pick<ObjectMeta, "outputID" | "size">, out: Uint8Array, bad: (why: string) => never): void {
  if (out.length !== meta.size) bad(`body is ${out.length} bytes, metadata says ${meta.size}`);
  const sum = new Bun.CryptoHasher("sha256").update(out).digest("hex");
  if (sum !== meta.outputID) bad(`SHA-256 of the body is ${sum}, not the output ID ${meta.outputID}`);
}
