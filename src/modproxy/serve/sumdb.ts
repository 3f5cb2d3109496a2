// Checksum-database proxy at /mod/sumdb/<name>/, for the databases named by
// --sumdb (default sum.golang.org). The go command uses it when GOSUMDB
// names the database and GOPROXY points here: it asks
// <proxy>/sumdb/<name>/supported first and, on 200, sends every sumdb
// request through the proxy. The answers are signed by the database, so
// the proxy only needs to pass them through faithfully, once their shape
// is checked (sumdb/answers.ts: a captive portal's page is never kept):
//
//   supported                         200 for configured names, else 404
//   lookup/<module>@<version>         immutable: cached forever
//   tile/<H>/<L>/<NNN>                full tiles: immutable, cached forever
//   tile/<H>/<L>/<NNN>.p/<W>          partial tiles: cached for the list ttl,
//                                     or cut from a wider stored tile
//   latest                            signed tree head: cached for the list ttl
//
// Where each database is fetched from: sumdb/sources.ts. Stored under
// <dir>/sumdb/<name>/..., as the go command's own module cache does
// ($GOMODCACHE/cache/download/sumdb/...). Offline mode: sumdb-offline.ts.

import type { Logger } from "../../util/log.ts";
import type { Metrics } from "../../util/metrics.ts";
import { PathError, unescapePath, unescapeVersion } from "../module/path.ts";
import type { Mirror } from "../storage/mirror.ts";
import { SmallCache } from "../storage/small-cache.ts";
import type { ModStore } from "../storage/store.ts";
import type { Upstream, UpstreamOptions } from "../upstream/fetch.ts";
import { type SumdbConfig, sumdbFileKind, writeSupported } from "../sumdb/databases.ts";
import { validateSumdbAnswer } from "../sumdb/answers.ts";
import { sumdbSources } from "../sumdb/sources.ts";
import { keepTilesComplete, storeTileFiles } from "../sumdb/store-tiles.ts";
import { widerTileData } from "../sumdb/tiles.ts";
import { parseTilePath } from "../sumdb/tlog.ts";
import { answerer } from "./answer.ts";
import { IMMUTABLE, errorText } from "./respond.ts";

export interface SumdbProxyOptions {
  store: ModStore;
  dbs: SumdbConfig[];
  upstreams: Upstream[];
  ttlMs: number;
  swrMs: number;
  notFoundTtlMs: number;
  upstreamOptions: UpstreamOptions;
  metrics: Metrics;
  logger: Logger;
  onStored?: (rel: string, path: string) => void;
  mirror?: Mirror;
}

/** Answers "<name>/<path>" (the part of the URL after /mod/sumdb/). */
export type SumdbHandler = (req: Request, rest: string) => Promise<Response>;

/**
 * What the online and offline proxies share: every request is counted
 * (sumdb_requests), "<name>/<path>" is split,
 * unknown databases get 404, "supported" gets 200, and the rest goes to
 * `handle` with the database's settings.
 */
export function sumdbFront(dbs: SumdbConfig[], metrics: Metrics, handle: (req: Request, d: SumdbConfig, path: string) => Promise<Response>): SumdbHandler {
  const byName = new Map(dbs.map((d) => [d.name, d]));
  return async (req, rest) => {
    metrics.inc("sumdb_requests");
    const slash = rest.indexOf("/");
    const name = slash < 0 ? rest : rest.slice(0, slash);
    const path = slash < 0 ? "" : rest.slice(slash + 1);
    const d = byName.get(name);
    if (!d) return errorText(404, `not found: checksum database ${JSON.stringify(name)} is not proxied here`);
    if (path === "supported") return new Response(null, { status: 200, headers: { "Cache-Control": "no-store" } });
    return handle(req, d, path);
  };
}

/** "lookup/<module>@<version>" with a valid module path and version, else the reason. */
function lookupError(path: string): string | null {
  const key = path.slice("lookup/".length);
  const at = key.lastIndexOf("@");
  try {
    if (at < 0) throw new PathError("lookup needs module@version");
    unescapePath(key.slice(0, at));
    unescapeVersion(key.slice(at + 1));
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

export function createSumdbProxy(o: SumdbProxyOptions): SumdbHandler {
  const { metrics, store } = o;
  const cache = new SmallCache({ store, metrics, logger: o.logger, notFoundTtlMs: o.notFoundTtlMs, swrMs: o.swrMs, prefix: "sumdb" });
  writeSupported(store, o.dbs);
  const onStored = keepTilesComplete(store, o.dbs, o.logger, o.onStored);
  const fetchFrom = sumdbSources(o);
  const answer = answerer({ metrics, family: "sumdb" });
  const short = `public, max-age=${Math.floor(o.ttlMs / 1000)}`;

  async function cached(req: Request, d: SumdbConfig, path: string, ttlMs: number | "forever", cacheControl: string): Promise<Response> {
    const rel = `sumdb/${d.name}/${path}`;
    const a = await cache.get({ rel, ttlMs, persist: true, fetch: () => fetchFrom(d, path), validate: (data) => validateSumdbAnswer(path, data), onStored });
    return answer(req, a, rel, cacheControl);
  }

  /**
   * A partial hash tile holds the first W hashes of its tile, and those
   * never change as the log grows: it is a prefix of any wider partial
   * tile and of the full tile. So when a wider one is stored, the narrower
   * one is answered from it without asking the database (this also keeps
   * the proxy working offline for clients whose last known tree is older
   * than ours), and stored too: the directory must stay usable as
   * GOPROXY=file://, where nothing derives it. Data tiles are not derived,
   * and neither is anything from a stored tile of the wrong size
   * (widerTileData).
   */
  async function derived(req: Request, d: SumdbConfig, path: string): Promise<Response | null> {
    const t = parseTilePath(path);
    const data = t ? await widerTileData(storeTileFiles(store, d.name), t) : null;
    if (!data) return null;
    const rel = `sumdb/${d.name}/${path}`;
    if (!(await store.stat(rel))) {
      await store.write(rel, data).then(
        () => onStored(rel, store.path(rel)),
        (err) => o.logger.debug(`sumdb: storing ${rel}: ${(err as Error)?.message ?? err}`),
      );
    }
    return answer(req, { kind: "data", data, mtimeMs: 0, stale: false, hit: true }, rel, IMMUTABLE);
  }

  return sumdbFront(o.dbs, metrics, async (req, d, path) => {
    if (path === "latest") return cached(req, d, path, o.ttlMs, short);
    if (path.startsWith("lookup/")) {
      const bad = lookupError(path);
      return bad ? errorText(400, `bad request: ${bad}`) : cached(req, d, path, "forever", IMMUTABLE);
    }
    if (sumdbFileKind(path) !== "tile") return errorText(404, "not found");
    if (!path.includes(".p/")) return cached(req, d, path, "forever", IMMUTABLE);
    return (await derived(req, d, path)) ?? cached(req, d, path, o.ttlMs, short);
  });
}
