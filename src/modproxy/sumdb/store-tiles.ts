// A database directory of the proxy's store (<store>/sumdb/<name>/) as
// tiles.ts sees one, and the tile keepers that keep each such directory
// complete for GOPROXY=file:// clients as it fills (tiles.ts).

import { readdirSync } from "node:fs";
import type { Logger } from "../../util/log.ts";
import type { ModStore } from "../storage/store.ts";
import type { SumdbConfig } from "./databases.ts";
import { type TileFiles, tileKeeper } from "./tiles.ts";

/** Paths relative to <store>/sumdb/<name>/; writes go through the store and are reported to onStored (store-relative). */
export function storeTileFiles(store: ModStore, name: string, onStored?: (rel: string, path: string) => void): TileFiles {
  const base = `sumdb/${name}`;
  return {
    read: async (rel) => {
      const st = await store.stat(`${base}/${rel}`);
      return st ? new Uint8Array(await Bun.file(st.path).arrayBuffer()) : null;
    },
    list: (rel) => {
      try {
        return readdirSync(store.path(`${base}/${rel}`));
      } catch {
        return [];
      }
    },
    write: async (rel, data) => {
      await store.write(`${base}/${rel}`, data);
      onStored?.(`${base}/${rel}`, store.path(`${base}/${rel}`));
    },
  };
}

/**
 * One tile keeper per database; the returned function is the proxy's
 * onStored: it passes every stored file on to `onStored` and tells the
 * keeper of its database.
 */
export function keepTilesComplete(
  store: ModStore,
  dbs: SumdbConfig[],
  logger: Logger,
  onStored?: (rel: string, path: string) => void,
): (rel: string, path: string) => void {
  const keepers = new Map<string, ReturnType<typeof tileKeeper>>();
  for (const d of dbs) {
    const files = storeTileFiles(store, d.name, onStored);
    keepers.set(d.name, tileKeeper(files, (err) => logger.debug(`sumdb: completing tiles of ${d.name}: ${(err as Error)?.message ?? err}`)));
  }
  return (rel, path) => {
    onStored?.(rel, path);
    const m = /^sumdb\/([^/]+)\/(.+)$/.exec(rel);
    if (m) void keepers.get(m[1]!)?.stored(m[2]!);
  };
}
