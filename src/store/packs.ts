// Packs: many outputs in one object, so a fresh machine fetches what a go
// command needs with a handful of streamed GETs instead of one round trip
// per output. The policy (when to read, what to write) is
// buildcache/pack-reader.ts and pack-writer.ts; this file owns the layout.
//
// Layout (in the bucket, under the optional --prefix; s3/client.ts adds it):
//
//   packs/<key>.head      the head of a key: which packs hold what (replaced)
//   packs/<key>.lead      the lead of a key: its first pack's first segment again (replaced)
//   packs/<packhex>.pack  a pack: entries' bodies back to back (immutable)
//
// key      the hex action ID of one of the first two distinct gets of the go
//          command that wrote it. The go command asks for the same first
//          actions whatever it builds with the same toolchain, GOOS/GOARCH
//          and main module with its dependencies (they are its package-index
//          entries, not the packages being built; build flags do not change
//          them), but the first two arrive in either order,
//          so a writer stores its head under both and a reader looks under
//          its own first. In practice one head serves every command of one
//          toolchain and module: `go build ./...`, `go test ./...`, `go vet`.
// packhex  SHA-256 of the pack's bytes: two writers of the same pack write
//          the same object, and a name never points at other bytes.
//
// A pack body is zstd frames back to back. Each frame compresses the raw
// bytes of consecutive outputs, in the order the writing command used them
// (close to the order the next run asks for them): compressing outputs
// together finds what they share (a std build's outputs come to 11% fewer
// bytes than compressed one by one, fewer than a tar --zstd of the same
// cache), and a reader decompresses once per frame, not once per output.
// A frame that zstd does not shrink is stored as it is. Nothing else is in
// a pack: it means nothing without a head.
//
// A head is zstd("gostash-packs 1\n" + JSON):
//
//   { "key": "<hex>",                  the key it was written for
//     "written": <unix ms>,
//     "packs": [                       oldest first; for an action in two
//       { "name": "<packhex>",         packs, the later one is used
//         "bytes": <pack size>,
//         "written": <unix ms>,
//         "frames": [ { "o": <offset>, "n": <bytes stored>,
//                       "r": <raw bytes>, "z": <true: zstd> } ],
//         "entries": [ { "a": "<actionhex>", "f": <frame index>,
//                        "o": <offset in the frame's raw bytes>,
//                        "m": { <the per-action object's metadata> } } ] } ],
//     "misses": [ "<actionhex>", ... ] }  optional: see below
//
// Frames are contiguous from offset 0 to the pack's size. A frame stores
// no more than zstd can make of its raw bytes: exactly "r" stored as it is
// (what zstd does not shrink), at most ZSTD_compressBound(r) = r + r/256
// (+ up to 64 under 128 KiB) as zstd, which also declares "r" in its
// header. A reader holds a frame's stored bytes and decompresses it into
// the size it declares, so a head claiming more stored bytes, or a frame
// declaring more (or nothing), is refused before either is allocated: a
// lying bucket cannot make it hold more than about "r" (at most
// MAX_FRAME_RAW) per frame. An entry's raw
// length is its output size ("m"'s gostash-size); entries are sorted by
// frame and offset and do not overlap. "m" is the same string map a
// per-action object carries as x-amz-meta-* (encodeMeta/decodeMeta), kept
// as it was read: a field added to ObjectMeta later travels in packs
// without a change here, and a head rewritten by an older gostash keeps
// fields it does not know.
//
// "misses" are actions the writing commands asked for, found nowhere, and
// did not store either: a link of a command's binary, which the go command
// never caches. A reader answers those as misses at once instead of
// asking the bucket for a per-action object that is not there, one round
// trip each (46 for golang.org/x/tools' `go build ./...`). An action in a
// pack is never a miss; a writer keeps at most MAX_HEAD_MISSES of them.
//
// Why one head naming every pack instead of a chain of pointers: a reader
// finds everything with one GET, and a writer replaces one small object
// last, after its pack is complete. Conditional writes are not available
// on every S3-compatible store, so concurrent writers of one key are safe
// this way instead: packs are immutable and written first, a head is
// written whole with one PUT (atomic on S3), so a reader only ever sees a
// complete head naming complete packs; the last head written wins and the
// delta of the other writer is left out (its next run writes it again).
//
// A lead holds the bytes [0, end) of the first pack a head names: exactly
// the first segment a reader cuts that pack into (readerSegments), the entries the go command asks for first. It is stored
// again under a name the key alone gives, with two x-amz-meta fields,
// gostash-lead-pack (the packhex) and gostash-lead-end (end), so a fresh
// machine asks for it together with the head and lands that segment one
// round trip sooner than a range GET sent once the head is in. A writer
// puts it before the heads whenever it writes a new first pack (a key's
// first, or a compaction); a lead naming a pack other than the head's, or
// a shorter range, is left unread, and its entries are checked like any
// other: a bad one is fetched again from the pack itself. Heads written
// before leads existed have none until their next compaction.
//
// Nothing in a head or a pack is trusted: a head that does not decode, is
// for another key or names impossible offsets is ignored (a miss, counted);
// every entry is checked against its output ID (SHA-256) and size before it
// is served, exactly like a per-action object.

import { zstdDecompressAtMost } from "../util/zstd-bounded.ts";
import { decodeMeta, MAX_ENCODED_OUTPUT, type ObjectMeta } from "./s3-objects.ts";

export const PACKS_DIR = "packs/";
const MAGIC = "gostash-packs 1\n";
const HEX64 = /^[0-9a-f]{64}$/;

/** A head naming more packs than this is not read (writers keep far fewer: pack-policy.ts). */
export const MAX_HEAD_PACKS = 64;
/** A head listing more entries than this is not read. */
export const MAX_HEAD_ENTRIES = 200_000;
/** A head listing more misses than this is not read; writers keep this many. */
export const MAX_HEAD_MISSES = 20_000;
/** Heads larger than this (compressed) are not read. */
export const MAX_HEAD_BYTES = 32 << 20;
/** Head text larger than this is refused, by the size its zstd header declares, before it is decompressed (a zstd bomb is not a head). */
const MAX_HEAD_TEXT = 256 << 20;
/** Pack sizes beyond this are not believed. */
const MAX_PACK_BYTES = 2 ** 42;

/** A frame larger than this (raw) is not believed: writers close frames at a few MiB, or hold one output of at most 64 MiB. */
export const MAX_FRAME_RAW = 2 * MAX_ENCODED_OUTPUT;

/** The most bytes a zstd frame of r raw bytes is stored in: zstd's worst case (ZSTD_compressBound). */
export function maxStoredFrame(r: number): number {
  const small = 128 << 10;
  return r + Math.floor(r / 256) + (r < small ? Math.floor((small - r) / 2048) : 0);
}

export interface PackFrame {
  /** Where its bytes are in the pack, and how many. */
  offset: number;
  length: number;
  /** Bytes once decompressed. */
  rawLength: number;
  zstd: boolean;
}

export interface PackEntry {
  actionID: string;
  /** Index of its frame in the pack's frames. */
  frame: number;
  /** Where its output starts in the frame's raw bytes; it is meta.size long. */
  offset: number;
  /** Parsed from `raw`. */
  meta: ObjectMeta;
  /** The metadata map as read, written back unchanged. */
  raw: Record<string, string>;
}

export interface PackRef {
  /** packhex: SHA-256 of the pack's bytes. */
  name: string;
  bytes: number;
  writtenMs: number;
  frames: PackFrame[];
  /** Sorted by frame and offset, not overlapping. */
  entries: PackEntry[];
}

export interface PackHead {
  key: string;
  writtenMs: number;
  /** Oldest first. */
  packs: PackRef[];
  /** Actions its writers asked for and could not store: known misses. */
  misses: string[];
}

export function isPackKey(s: string): boolean {
  return HEX64.test(s);
}

/** The object name of a key's head (without the prefix). */
export function headObject(key: string): string {
  return `${PACKS_DIR}${key}.head`;
}

/** The object name of a key's lead (without the prefix). */
export function leadObject(key: string): string {
  return `${PACKS_DIR}${key}.lead`;
}

const LEAD_PACK = "gostash-lead-pack";
const LEAD_END = "gostash-lead-end";

/** The metadata of a lead: which pack it copies, up to which byte. */
export function leadMeta(pack: string, end: number): Record<string, string> {
  return { [LEAD_PACK]: pack, [LEAD_END]: String(end) };
}

/** Whether a lead's metadata says it holds the bytes [0, end) of this pack. */
export function leadCovers(meta: Record<string, string>, pack: string, end: number): boolean {
  const n = Number(meta[LEAD_END]);
  return meta[LEAD_PACK] === pack && Number.isSafeInteger(n) && n >= end;
}

/** The object name of a pack (without the prefix). */
export function packObject(name: string): string {
  return `${PACKS_DIR}${name}.pack`;
}

export function encodeHead(h: PackHead): Uint8Array {
  const json = {
    key: h.key,
    written: h.writtenMs,
    packs: h.packs.map((p) => ({
      name: p.name,
      bytes: p.bytes,
      written: p.writtenMs,
      frames: p.frames.map((f) => ({ o: f.offset, n: f.length, r: f.rawLength, z: f.zstd })),
      entries: p.entries.map((e) => ({ a: e.actionID, f: e.frame, o: e.offset, m: e.raw })),
    })),
    ...(h.misses.length ? { misses: h.misses } : {}),
  };
  return Bun.zstdCompressSync(Buffer.from(MAGIC + JSON.stringify(json)), { level: 3 });
}

/** A head that is not one, or not one for this key. */
export class BadHeadError extends Error {
  override name = "BadHeadError";
}

/** Decodes and checks a head read for `key`; throws BadHeadError naming what is wrong. */
export function decodeHead(body: Uint8Array, key: string): PackHead {
  let text: string;
  try {
    text = Buffer.from(zstdDecompressAtMost(body, MAX_HEAD_TEXT)).toString("utf8");
  } catch (err) {
    throw new BadHeadError(`does not decompress: ${(err as Error)?.message ?? err}`);
  }
  if (!text.startsWith(MAGIC)) throw new BadHeadError("not a gostash pack head");
  let json: unknown;
  try {
    json = JSON.parse(text.slice(MAGIC.length));
  } catch (err) {
    throw new BadHeadError(`not JSON: ${(err as Error)?.message ?? err}`);
  }
  const o = json as { key?: unknown; written?: unknown; packs?: unknown; misses?: unknown };
  if (o?.key !== key) throw new BadHeadError(`written for key ${String(o?.key).slice(0, 80)}, not ${key}`);
  if (!Array.isArray(o.packs) || o.packs.length > MAX_HEAD_PACKS) throw new BadHeadError(`needs a list of at most ${MAX_HEAD_PACKS} packs`);
  const budget = { entries: MAX_HEAD_ENTRIES };
  const packs = o.packs.map((p, i) => decodePack(p, i, budget));
  return { key, writtenMs: count(o.written, "written"), packs, misses: decodeMisses(o.misses) };
}

/** Absent in heads written before misses were: none. */
function decodeMisses(m: unknown): string[] {
  if (m === undefined) return [];
  if (!Array.isArray(m) || m.length > MAX_HEAD_MISSES) throw new BadHeadError(`misses: needs a list of at most ${MAX_HEAD_MISSES} action IDs`);
  for (const a of m) if (typeof a !== "string" || !HEX64.test(a)) throw new BadHeadError("misses: not an action ID");
  return m as string[];
}

function decodePack(p: unknown, i: number, budget: { entries: number }): PackRef {
  const o = p as { name?: unknown; bytes?: unknown; written?: unknown; frames?: unknown; entries?: unknown };
  const what = `pack ${i}`;
  if (typeof o?.name !== "string" || !HEX64.test(o.name)) throw new BadHeadError(`${what}: name is not a SHA-256`);
  const bytes = count(o.bytes, `${what}: bytes`);
  if (bytes > MAX_PACK_BYTES) throw new BadHeadError(`${what}: ${bytes} bytes is not believable`);
  if (!Array.isArray(o.frames) || !Array.isArray(o.entries)) throw new BadHeadError(`${what}: frames or entries missing`);
  const frames = decodeFrames(o.frames, bytes, what);
  budget.entries -= o.entries.length;
  if (budget.entries < 0) throw new BadHeadError(`more than ${MAX_HEAD_ENTRIES} entries`);
  const entries: PackEntry[] = [];
  let frame = 0;
  let end = 0;
  for (const [j, e] of o.entries.entries()) {
    const entry = decodeEntry(e, `${what} entry ${j}`);
    const f = frames[entry.frame];
    if (!f) throw new BadHeadError(`${what} entry ${j}: no frame ${entry.frame}`);
    if (entry.frame < frame || (entry.frame === frame && entry.offset < end)) throw new BadHeadError(`${what} entry ${j}: overlaps the entry before it`);
    frame = entry.frame;
    end = entry.offset + entry.meta.size;
    if (end > f.rawLength) throw new BadHeadError(`${what} entry ${j}: ends at ${end}, past its frame's ${f.rawLength} bytes`);
    entries.push(entry);
  }
  return { name: o.name, bytes, writtenMs: count(o.written, `${what}: written`), frames, entries };
}

/** Frames back to back from 0 to the pack's end, each of a believable size. */
function decodeFrames(list: unknown[], bytes: number, what: string): PackFrame[] {
  let at = 0;
  const frames = list.map((x, k) => {
    const f = x as { o?: unknown; n?: unknown; r?: unknown; z?: unknown };
    const frame = { offset: count(f?.o, `${what} frame ${k}: offset`), length: count(f?.n, `${what} frame ${k}: length`), rawLength: count(f?.r, `${what} frame ${k}: raw`), zstd: f?.z === true };
    if (frame.offset !== at) throw new BadHeadError(`${what} frame ${k}: starts at ${frame.offset}, not where the one before ends (${at})`);
    if (frame.rawLength > MAX_FRAME_RAW) throw new BadHeadError(`${what} frame ${k}: ${frame.rawLength} raw bytes is larger than any writer makes`);
    if (!frame.zstd && frame.length !== frame.rawLength) throw new BadHeadError(`${what} frame ${k}: stored, but ${frame.length} bytes for ${frame.rawLength}`);
    if (frame.length > maxStoredFrame(frame.rawLength)) throw new BadHeadError(`${what} frame ${k}: ${frame.length} bytes for ${frame.rawLength} raw, more than zstd ever stores them in`);
    at += frame.length;
    return frame;
  });
  if (at !== bytes) throw new BadHeadError(`${what}: frames end at ${at}, the pack at ${bytes}`);
  return frames;
}

function decodeEntry(e: unknown, what: string): PackEntry {
  const o = e as { a?: unknown; f?: unknown; o?: unknown; m?: unknown };
  if (typeof o?.a !== "string" || !HEX64.test(o.a)) throw new BadHeadError(`${what}: not an action ID`);
  const raw = stringMap(o.m);
  const meta = raw && decodeMeta(raw);
  if (!meta) throw new BadHeadError(`${what}: metadata does not decode`);
  if (meta.size > MAX_ENCODED_OUTPUT) throw new BadHeadError(`${what}: an output of ${meta.size} bytes is larger than any writer packs`);
  return { actionID: o.a, frame: count(o.f, `${what}: frame`), offset: count(o.o, `${what}: offset`), meta, raw };
}

function stringMap(m: unknown): Record<string, string> | null {
  if (typeof m !== "object" || m === null || Array.isArray(m)) return null;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) {
    if (typeof v !== "string") return null;
    out[k] = v;
  }
  return out;
}

function count(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new BadHeadError(`${what}: not a whole number`);
  return v;
}

/** Where each action of a head is: the last pack listing it wins. */
export function headIndex(h: PackHead): Map<string, { pack: PackRef; entry: PackEntry }> {
  const m = new Map<string, { pack: PackRef; entry: PackEntry }>();
  for (const pack of h.packs) for (const entry of pack.entries) m.set(entry.actionID, { pack, entry });
  return m;
}

/** A byte range of a pack fetched with one GET: whole frames only. */
export interface Segment {
  pack: PackRef;
  /** Indexes of its frames, in order. */
  frames: number[];
  /** First byte and the byte after the last, in the pack. */
  start: number;
  end: number;
  /** The entries of its frames, in order. */
  entries: PackEntry[];
  /** The whole pack: fetched without a Range header. */
  whole: boolean;
}

/**
 * Cuts a pack into segments of whole frames: the first of about `first`
 * bytes, each next one twice the one before, up to `target` (a frame
 * larger than that is a segment of its own). Small first segments put the
 * first entries on disk sooner (a server sends nothing of a range before it
 * has started reading it, a proxy maybe nothing before all of it); large
 * later ones keep the requests few. A pack that fits in one segment is
 * fetched whole.
 */
/** Bytes of a pack a reader fetches with one range GET: the first segments are smaller. */
const SEGMENT_BYTES = 12 << 20;
const FIRST_SEGMENT_BYTES = 2 << 20;

/** The segments a reader (buildcache/pack-reader.ts) cuts a pack into; the first is what a key's lead copies. */
export function readerSegments(pack: PackRef): Segment[] {
  return segmentsOf(pack, SEGMENT_BYTES, FIRST_SEGMENT_BYTES);
}

export function segmentsOf(pack: PackRef, target: number, first = target): Segment[] {
  const out: Segment[] = [];
  let cur: number[] = [];
  let size = Math.min(first, target);
  const flush = () => {
    if (!cur.length) return;
    const a = pack.frames[cur[0]!]!;
    const b = pack.frames[cur.at(-1)!]!;
    out.push({ pack, frames: cur, start: a.offset, end: b.offset + b.length, entries: [], whole: false });
    cur = [];
    size = Math.min(size * 2, target);
  };
  pack.frames.forEach((f, k) => {
    if (cur.length && f.offset + f.length - pack.frames[cur[0]!]!.offset > size) flush();
    cur.push(k);
  });
  flush();
  const segOfFrame = new Map<number, Segment>();
  for (const seg of out) for (const k of seg.frames) segOfFrame.set(k, seg);
  for (const e of pack.entries) segOfFrame.get(e.frame)?.entries.push(e);
  if (out.length === 1) out[0]!.whole = true;
  return out;
}
