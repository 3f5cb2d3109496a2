// The checksum database's transparent log (golang.org/x/mod/sumdb/tlog),
// as much as a client needs to prove that a record is in a signed tree:
// hashes, stored-hash indexes, tiles, and reading the record's hash from
// tiles that are themselves checked against the tree hash.
//
// The log is a Merkle tree of SHA-256 hashes: a record hashes as
// SHA-256(0x00 || record), an inner node as SHA-256(0x01 || left || right).
// Every hash is stored at an index (level-0 hashes of record n and the
// complete subtrees they close, in order). Tiles of height H hold 2^H
// hashes of one level range, served at tile/H/L/NNN (and tile/H/L/NNN.p/W
// for the first W hashes of an incomplete one). A tile is trusted once its
// hashes combine, through its parent tiles, into the signed tree hash.
//
// Indexes reach twice the number of records (a few hundred million for
// sum.golang.org): plain numbers, with shifts done by multiplication so
// nothing overflows 32 bits.

import { createHash } from "node:crypto";

export const HASH_SIZE = 32;

export interface Tree {
  n: number;
  hash: Uint8Array;
}

export interface Tile {
  h: number;
  l: number;
  n: number;
  w: number;
}

export class TlogError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TlogError";
  }
}

const shl = (x: number, k: number) => x * 2 ** k;
const shr = (x: number, k: number) => Math.floor(x / 2 ** k);

function trailingZeros(x: number): number {
  let z = 0;
  while (x > 0 && x % 2 === 0) {
    x /= 2;
    z++;
  }
  return z;
}

export function recordHash(data: Uint8Array): Uint8Array {
  return createHash("sha256").update(Uint8Array.of(0)).update(data).digest();
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return createHash("sha256").update(Uint8Array.of(1)).update(left).update(right).digest();
}

export function equalHash(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}

/** Index of the hash at `level` for the n-th node of that level. */
export function storedHashIndex(level: number, n: number): number {
  for (let l = level; l > 0; l--) n = 2 * n + 1;
  let i = 0;
  for (; n > 0; n = shr(n, 1)) i += n;
  return i + level;
}

export function splitStoredHashIndex(index: number): [level: number, n: number] {
  let n = Math.floor(index / 2);
  let indexN = storedHashIndex(0, n);
  if (indexN > index) throw new TlogError("bad math");
  for (;;) {
    const x = indexN + 1 + trailingZeros(n + 1);
    if (x > index) break;
    n++;
    indexN = x;
  }
  const level = index - indexN;
  return [level, shr(n, level)];
}

function tileForIndex(h: number, index: number): { t: Tile; start: number; end: number } {
  let [level, n] = splitStoredHashIndex(index);
  const l = Math.floor(level / h);
  level -= l * h;
  const tn = shr(shl(n, level), h);
  n -= shr(shl(tn, h), level);
  return { t: { h, l, n: tn, w: shl(n + 1, level) }, start: shl(n, level) * HASH_SIZE, end: shl(n + 1, level) * HASH_SIZE };
}

function tileHash(data: Uint8Array): Uint8Array {
  if (data.length === HASH_SIZE) return data;
  const half = data.length / 2;
  return nodeHash(tileHash(data.subarray(0, half)), tileHash(data.subarray(half)));
}

export function hashFromTile(t: Tile, data: Uint8Array, index: number): Uint8Array {
  if (t.h < 1 || t.h > 30 || t.l < 0 || t.l >= 64 || t.w < 1 || t.w > 2 ** t.h) throw new TlogError(`invalid tile ${tilePath(t)}`);
  if (data.length < t.w * HASH_SIZE) throw new TlogError(`data too short for tile ${tilePath(t)}`);
  const { t: t1, start, end } = tileForIndex(t.h, index);
  if (t.l !== t1.l || t.n !== t1.n || t.w < t1.w) throw new TlogError(`index ${index} is in ${tilePath(t1)} not ${tilePath(t)}`);
  return tileHash(data.subarray(start, end));
}

/** The k-th ancestor tile of t in a tree of n records, or null past the top. */
function tileParent(t: Tile, k: number, n: number): Tile | null {
  const p = { h: t.h, l: t.l + k, n: shr(t.n, k * t.h), w: 2 ** t.h };
  const max = shr(n, p.l * p.h);
  if (shl(p.n, p.h) + p.w >= max) {
    if (shl(p.n, p.h) >= max) return null;
    p.w = max - shl(p.n, p.h);
  }
  return p;
}

export function tilePath(t: Tile): string {
  let n = t.n;
  let s = String(n % 1000).padStart(3, "0");
  while (n >= 1000) {
    n = Math.floor(n / 1000);
    s = `x${String(n % 1000).padStart(3, "0")}/${s}`;
  }
  return `tile/${t.h}/${t.l}/${s}${t.w !== 2 ** t.h ? `.p/${t.w}` : ""}`;
}

/** The tile a hash-tile path names (tilePath's inverse), or null for data tiles and impossible tiles. */
export function parseTilePath(path: string): Tile | null {
  const m = /^tile\/([0-9]{1,2})\/([0-9]{1,2})\/((?:x[0-9]{3}\/)*)([0-9]{3})(?:\.p\/([0-9]{1,3}))?$/.exec(path);
  if (!m) return null;
  const h = Number(m[1]);
  const w = m[5] === undefined ? 2 ** h : Number(m[5]);
  if (h < 1 || h > 16 || w < 1 || w > 2 ** h || (m[5] !== undefined && w === 2 ** h)) return null;
  const n = Number(`${m[3]!.replace(/x|\//g, "")}${m[4]}`);
  return { h, l: Number(m[2]), n, w };
}

function maxpow2(n: number): [k: number, l: number] {
  let l = 0;
  while (2 ** (l + 1) < n) l++;
  return [2 ** l, l];
}

/** Indexes of the complete subtrees whose hashes make up the hash of a tree of size hi (from lo). */
function subTreeIndex(lo: number, hi: number): number[] {
  const need: number[] = [];
  while (lo < hi) {
    const [k, level] = maxpow2(hi - lo + 1);
    if (lo % k !== 0) throw new TlogError("bad math in subTreeIndex");
    need.push(storedHashIndex(level, shr(lo, level)));
    lo += k;
  }
  return need;
}

const key = (t: Tile) => `${t.h}/${t.l}/${t.n}/${t.w}`;

/**
 * The stored hashes at `indexes`, read from tiles of height `h` (fetched
 * by `readTiles`, each exactly w*32 bytes) and authenticated against
 * `tree`: the tiles covering the tree's top must hash to tree.hash, and
 * every other tile must hash to the entry its parent tile holds for it
 * (tlog.TileHashReader).
 */
export async function readHashes(tree: Tree, h: number, indexes: number[], readTiles: (tiles: Tile[]) => Promise<Uint8Array[]>): Promise<Uint8Array[]> {
  const order = new Map<string, number>();
  const tiles: Tile[] = [];
  const add = (t: Tile) => {
    order.set(key(t), tiles.length);
    tiles.push(t);
  };
  const stx = subTreeIndex(0, tree.n);
  const stxTile: number[] = [];
  for (const x of stx) {
    const t = tileParent(tileForIndex(h, x).t, 0, tree.n)!;
    if (!order.has(key(t))) add(t);
    stxTile.push(order.get(key(t))!);
  }
  const indexTile: number[] = [];
  for (const x of indexes) {
    if (x >= storedHashIndex(0, tree.n)) throw new TlogError(`index ${x} is not in a tree of ${tree.n} records`);
    const t = tileForIndex(h, x).t;
    // Walk up until a tile already on the list, then add the path down.
    let k = 0;
    for (; ; k++) {
      if (k > 64) throw new TlogError("bad math in readHashes");
      const p = tileParent(t, k, tree.n);
      if (p && order.has(key(p))) {
        if (k === 0) indexTile.push(order.get(key(p))!);
        break;
      }
    }
    for (k--; k >= 0; k--) {
      const p = tileParent(t, k, tree.n)!;
      if (p.w !== 2 ** p.h) throw new TlogError(`bad math in readHashes: ${tree.n} ${x} ${tilePath(p)}`);
      if (k === 0) indexTile.push(tiles.length);
      add(p);
    }
  }
  const data = await readTiles(tiles);
  tiles.forEach((t, i) => {
    if (data[i]?.length !== t.w * HASH_SIZE) throw new TlogError(`tile ${tilePath(t)} has ${data[i]?.length} bytes, want ${t.w * HASH_SIZE}`);
  });

  // The top tiles against the tree hash.
  const last = stx.length - 1;
  let th = hashFromTile(tiles[stxTile[last]!]!, data[stxTile[last]!]!, stx[last]!);
  for (let i = last - 1; i >= 0; i--) th = nodeHash(hashFromTile(tiles[stxTile[i]!]!, data[stxTile[i]!]!, stx[i]!), th);
  if (!equalHash(th, tree.hash)) throw new TlogError("downloaded inconsistent tile (top tiles do not hash to the signed tree)");
  // Every other tile against its parent.
  for (let i = new Set(stxTile).size; i < tiles.length; i++) {
    const t = tiles[i]!;
    const p = tileParent(t, 1, tree.n)!;
    const j = order.get(key(p));
    if (j === undefined) throw new TlogError("bad math in readHashes: lost parent");
    const want = hashFromTile(p, data[j]!, storedHashIndex(p.l * p.h, t.n));
    if (!equalHash(want, tileHash(data[i]!))) throw new TlogError(`downloaded inconsistent tile ${tilePath(t)}`);
  }
  return indexes.map((x, i) => hashFromTile(tiles[indexTile[i]!]!, data[indexTile[i]!]!, x));
}

/** "go.sum database tree\n<N>\n<base64 hash>\n..." (tlog.ParseTree). */
export function parseTree(text: string): Tree {
  const lines = text.split("\n");
  if (lines[0] !== "go.sum database tree" || lines.length < 4) throw new TlogError("malformed tree note");
  if (!/^(0|[1-9][0-9]*)$/.test(lines[1]!) || !Number.isSafeInteger(Number(lines[1]))) throw new TlogError("malformed tree note");
  const hash = Buffer.from(lines[2]!, "base64");
  if (hash.length !== HASH_SIZE || hash.toString("base64") !== lines[2]) throw new TlogError("malformed tree note");
  return { n: Number(lines[1]), hash };
}

/** A lookup answer "<id>\n<record text>\n<signed tree note>" (tlog.ParseRecord). */
export function parseRecord(msg: Uint8Array): { id: number; text: Uint8Array; rest: Uint8Array } {
  const nl = msg.indexOf(10);
  if (nl < 0) throw new TlogError("malformed record data");
  const idText = Buffer.from(msg.subarray(0, nl)).toString("latin1");
  if (!/^(0|[1-9][0-9]*)$/.test(idText) || !Number.isSafeInteger(Number(idText))) throw new TlogError("malformed record data");
  const body = msg.subarray(nl + 1);
  let i = -1;
  for (let j = 0; j + 1 < body.length; j++) {
    if (body[j] === 10 && body[j + 1] === 10) {
      i = j;
      break;
    }
  }
  if (i < 0) throw new TlogError("malformed record data");
  const text = body.subarray(0, i + 1);
  // Record text: UTF-8, no control characters but newline, no empty line, ends in newline.
  let s: string;
  try {
    s = new TextDecoder("utf-8", { fatal: true }).decode(text);
  } catch {
    throw new TlogError("malformed record data");
  }
  if (/[\u0000-\u0009\u000b-\u001f]/.test(s) || s.includes("\n\n") || !s.endsWith("\n")) throw new TlogError("malformed record data");
  return { id: Number(idText), text, rest: body.subarray(i + 2) };
}
