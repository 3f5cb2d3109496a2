// The checksum-database proxy in offline mode (--offline): stored answers
// only, else 404 (never 5xx, so the go command falls through its GOPROXY
// list). Immutable answers (lookups, full tiles) missing from the store
// are asked of the bucket, when there is one, and stored; `latest` and
// partial tiles are served however old they are. A partial tile missing
// from the store is cut from a wider stored one (a prefix of it). Answers
// are counted like the online proxy's (answer.ts: sumdb_*).

import type { Metrics } from "../../util/metrics.ts";
import type { Mirror } from "../storage/mirror.ts";
import type { ModStore } from "../storage/store.ts";
import { type SumdbConfig, sumdbFileKind, writeSupported } from "../sumdb/databases.ts";
import { storeTileFiles } from "../sumdb/store-tiles.ts";
import { widerTileData } from "../sumdb/tiles.ts";
import { parseTilePath } from "../sumdb/tlog.ts";
import { OFFLINE_NOT_FOUND } from "./source.ts";
import { answerer } from "./answer.ts";
import { IMMUTABLE, errorText } from "./respond.ts";
import { type SumdbHandler, sumdbFront } from "./sumdb.ts";

/** The stored copy of an immutable answer, fetched from the bucket into the store when missing. */
async function storedOrFromBucket(store: ModStore, rel: string, mirror: Mirror | undefined, immutable: boolean) {
  const st = await store.stat(rel);
  if (st || !mirror || !immutable) return st;
  const r = await mirror.get(rel);
  if (!r?.ok) return null;
  await store.write(rel, new Uint8Array(await new Response(r.body).arrayBuffer()));
  return store.stat(rel);
}

export interface OfflineSumdbOptions {
  store: ModStore;
  dbs: SumdbConfig[];
  mirror?: Mirror;
  metrics: Metrics;
}

export function createOfflineSumdb(o: OfflineSumdbOptions): SumdbHandler {
  const { store } = o;
  const answer = answerer({ metrics: o.metrics, family: "sumdb" });
  writeSupported(store, o.dbs);
  return sumdbFront(o.dbs, o.metrics, async (req, d, path) => {
    const kind = sumdbFileKind(path);
    if (kind !== "latest" && kind !== "tile" && !(kind === "lookup" && !path.includes(".."))) return errorText(404, "not found");
    const rel = `sumdb/${d.name}/${path}`;
    const immutable = kind === "lookup" || (kind === "tile" && !path.includes(".p/"));
    const st = await storedOrFromBucket(store, rel, o.mirror, immutable);
    if (st) return answer(req, { kind: "file", ...st, stale: false, hit: true }, rel, immutable ? IMMUTABLE : "no-cache");
    const t = kind === "tile" ? parseTilePath(path) : null;
    const data = t && t.w < 2 ** t.h ? await widerTileData(storeTileFiles(store, d.name), t) : null;
    if (data) return answer(req, { kind: "data", data, mtimeMs: 0, stale: false, hit: true }, rel, IMMUTABLE);
    return answer(req, { kind: "notfound", status: 404, message: OFFLINE_NOT_FOUND }, rel, "");
  });
}
