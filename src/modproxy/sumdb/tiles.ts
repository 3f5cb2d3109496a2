// Keeping a stored checksum database complete for GOPROXY=file:// clients.
//
// A client verifies a lookup against the tree it believes in, and a client
// starting from nothing believes the tree in the first lookup it reads. For
// a tree of N records it asks for at most one partial hash tile per level:
// tile/H/L/<N >> (H*(L+1))>.p/<(N >> H*L) mod 2^H>. The go command that
// filled the directory may have verified the same lookups against a newer
// tree (it had read a later lookup first), so only the wider partial tiles
// of that newer tree were fetched. Over HTTP the proxy derives the narrower
// ones (a partial tile is a prefix of every wider one and of the full tile);
// a file:// directory cannot, so these functions write them: for every tree
// size a stored lookup or `latest` names, each partial tile that tree needs
// and that a wider stored tile holds. The proxy answers a narrower tile
// from a wider one the same way (widerTileData).

import { readdirSync, renameSync, mkdirSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { HASH_SIZE, type Tile, tilePath } from "./tlog.ts";

/** What the completion needs of a database directory; paths are relative to it ("tile/8/0/000.p/3"). */
export interface TileFiles {
  read(rel: string): Promise<Uint8Array | null>;
  /** File names in a directory, [] when it does not exist. */
  list(rel: string): string[];
  write(rel: string, data: Uint8Array): Promise<void>;
}

/** Go's checksum-database client reads tiles of height 8 (golang.org/x/mod/sumdb). */
export const TILE_HEIGHT = 8;

/** The tree size of a signed tree note, alone (`latest`) or at the end of a lookup answer; null if there is none. */
export function treeSizeOf(data: Uint8Array): number | null {
  const text = Buffer.from(data).toString("latin1");
  const m = /(?:^|\n)go\.sum database tree\n(0|[1-9][0-9]{0,15})\n/.exec(text);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : null;
}

/** The partial tiles of height h a client with a tree of n records may ask for. */
export function partialTiles(h: number, n: number): Tile[] {
  const out: Tile[] = [];
  const size = 2 ** h;
  for (let l = 0; Math.floor(n / 2 ** (l * h)) > 0; l++) {
    const hashes = Math.floor(n / 2 ** (l * h));
    const w = hashes % size;
    if (w > 0) out.push({ h, l, n: Math.floor(hashes / size), w });
  }
  return out;
}

/**
 * The first t.w hashes of tile t, cut from the narrowest stored tile that
 * holds them (a wider partial tile, or the full tile), or null when none is
 * stored. A stored tile counts only when it is exactly as long as its
 * width says (W hashes, 2^H for the full tile): anything else is not a
 * tile (an error page, a cut download), and a prefix of it would be
 * served and stored as if the database had signed it.
 */
export async function widerTileData(files: TileFiles, t: Tile): Promise<Uint8Array | null> {
  const full = tilePath({ ...t, w: 2 ** t.h });
  const wider = files
    .list(`${full}.p`)
    .filter((f) => /^[0-9]+$/.test(f) && Number(f) > t.w && Number(f) < 2 ** t.h)
    .sort((a, b) => Number(a) - Number(b))
    .map((f) => ({ path: `${full}.p/${f}`, w: Number(f) }));
  for (const src of [{ path: full, w: 2 ** t.h }, ...wider]) {
    const data = await files.read(src.path);
    if (data && data.length === src.w * HASH_SIZE) return data.slice(0, t.w * HASH_SIZE);
  }
  return null;
}

/**
 * Writes partial tile t from a wider stored one (or the full tile) unless it
 * is there already. Returns "present", "written" or "missing" (no wider
 * tile stored yet).
 */
export async function deriveTile(files: TileFiles, t: Tile): Promise<"present" | "written" | "missing"> {
  const rel = tilePath(t);
  if (await files.read(rel)) return "present";
  const data = await widerTileData(files, t);
  if (!data) return "missing";
  await files.write(rel, data);
  return "written";
}

/** Heights of the hash tiles stored (the directory names under tile/), or Go's 8 when there are none. */
export function tileHeights(files: TileFiles): number[] {
  const hs = files
    .list("tile")
    .filter((f) => /^[0-9]{1,2}$/.test(f) && Number(f) >= 1 && Number(f) <= 30)
    .map(Number);
  return hs.length ? hs : [TILE_HEIGHT];
}

/**
 * Derives every partial tile the trees of the given sizes need. Returns how
 * many were written and the sizes still lacking one (no wider tile yet).
 */
export async function completeTiles(files: TileFiles, sizes: Iterable<number>): Promise<{ written: number; incomplete: number[] }> {
  let written = 0;
  const incomplete: number[] = [];
  const heights = tileHeights(files);
  for (const n of new Set(sizes)) {
    let done = true;
    for (const h of heights) {
      for (const t of partialTiles(h, n)) {
        const r = await deriveTile(files, t);
        if (r === "written") written++;
        if (r === "missing") done = false;
      }
    }
    if (!done) incomplete.push(n);
  }
  return { written, incomplete };
}

/** The tree sizes named by a database directory's stored lookups and its `latest`. */
export async function storedTreeSizes(files: TileFiles, walk: (rel: string) => Iterable<string>): Promise<Set<number>> {
  const sizes = new Set<number>();
  const add = (data: Uint8Array | null) => {
    const n = data ? treeSizeOf(data) : null;
    if (n !== null && n > 0) sizes.add(n);
  };
  add(await files.read("latest"));
  for (const rel of walk("lookup")) add(await files.read(`lookup/${rel}`));
  return sizes;
}

/** A database directory on disk (an export tree); written files are reported to onWrite. */
export function dirTileFiles(root: string, onWrite?: (rel: string, data: Uint8Array) => void): TileFiles {
  return {
    read: (rel) => readFile(join(root, rel)).then(
      (b) => new Uint8Array(b),
      () => null,
    ),
    list: (rel) => {
      try {
        return readdirSync(join(root, rel));
      } catch {
        return [];
      }
    },
    write: async (rel, data) => {
      const dst = join(root, rel);
      mkdirSync(dirname(dst), { recursive: true });
      writeFileSync(`${dst}.tmp`, data);
      renameSync(`${dst}.tmp`, dst);
      onWrite?.(rel, data);
    },
  };
}

/**
 * Keeps a database directory complete while it fills: stored() after each
 * write of a lookup, `latest` or tile. Tree sizes whose tiles are not all
 * derivable yet (the wider tile has not arrived) wait for the next tile,
 * at most `cap` of them. Work runs one pass at a time, off the request path.
 */
export function tileKeeper(files: TileFiles, onError: (err: unknown) => void, cap = 1000) {
  const pending = new Set<number>();
  let chain: Promise<void> = Promise.resolve();
  let queued = false;
  const pass = async () => {
    queued = false;
    const sizes = [...pending];
    const { incomplete } = await completeTiles(files, sizes);
    const left = new Set(incomplete);
    for (const n of sizes) if (!left.has(n)) pending.delete(n);
  };
  return {
    async stored(rel: string): Promise<void> {
      if (rel === "latest" || rel.startsWith("lookup/")) {
        const data = await files.read(rel).catch(() => null);
        const n = data ? treeSizeOf(data) : null;
        if (n === null || n === 0) return;
        pending.delete(n);
        pending.add(n);
        for (const old of pending) {
          if (pending.size <= cap) break;
          pending.delete(old);
        }
      } else if (!rel.startsWith("tile/") || pending.size === 0) return;
      if (queued) return;
      queued = true;
      chain = chain.then(pass).catch(onError);
    },
    /** Resolves when the passes scheduled so far are done. */
    idle: (): Promise<void> => chain,
  };
}
