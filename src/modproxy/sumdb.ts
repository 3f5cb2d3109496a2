// Checksum-database proxy at /mod/sumdb/<name>/, for the databases named by
// --sumdb (default sum.golang.org). The go command uses it when GOSUMDB
// names the database and GOPROXY points here: it asks
// <proxy>/sumdb/<name>/supported first and, on 200, sends every sumdb
// request through the proxy. The answers are signed by the database, so
// the proxy only needs to pass them through faithfully:
//
//   supported                         200 for configured names, else 404
//   lookup/<module>@<version>         immutable: cached forever
//   tile/<H>/<L>/<NNN>                full tiles: immutable, cached forever
//   tile/<H>/<L>/<NNN>.p/<W>          partial tiles: cached for the list ttl
//   latest                            signed tree head: cached for the list ttl
//
// Where each database is fetched from: "name=URL" in --sumdb gives it
// explicitly; otherwise, like the go command, each upstream proxy is asked
// whether it proxies the database (<upstream>/sumdb/<name>/supported), and
// failing that the database is fetched directly from https://<name>.
// Stored under <dir>/sumdb/<name>/..., as the go command's own module
// cache does ($GOMODCACHE/cache/download/sumdb/...).

import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import type { Mirror } from "./mirror.ts";
import { SmallCache, type SmallAnswer } from "./cache.ts";
import { PathError, unescapePath, unescapeVersion } from "./paths.ts";
import { IMMUTABLE, errorText, serveData, serveFile } from "./respond.ts";
import type { ModStore } from "./store.ts";
import { type TileFiles, tileKeeper } from "./tiles.ts";
import { fetchUpstream, type FetchResult, type Upstream, type UpstreamOptions, UpstreamError } from "./upstream.ts";

export interface SumdbConfig {
  name: string;
  /** Explicit base URL of the database, or null to discover it. */
  url: string | null;
}

const NAME = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?$/;

/**
 * Parses --sumdb: comma-separated names, each optionally "name=URL".
 * "true"/"on" (go-cache-plugin's boolean) means the default; "off"/"false"
 * turns the sumdb proxy off.
 */
export function parseSumdbs(v: string | undefined): SumdbConfig[] {
  const raw = (v ?? "").trim();
  if (raw === "" || /^(1|true|yes|on)$/i.test(raw)) return [{ name: "sum.golang.org", url: null }];
  if (/^(0|false|no|off|none)$/i.test(raw)) return [];
  return raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const eq = s.indexOf("=");
      const name = eq < 0 ? s : s.slice(0, eq);
      const url = eq < 0 ? null : s.slice(eq + 1).replace(/\/+$/, "");
      if (!NAME.test(name)) throw new Error(`config: --sumdb: invalid database name ${JSON.stringify(name)}`);
      if (url !== null && !/^https?:\/\//.test(url)) throw new Error(`config: --sumdb: ${name}: URL must be http(s), got ${JSON.stringify(url)}`);
      return { name, url };
    });
}

const TILE = /^tile\/[0-9]{1,2}\/(data|[0-9]{1,2})(\/x[0-9]{3})*\/[0-9]{3}(\.p\/[0-9]{1,3})?$/;

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

export function createSumdbProxy(o: SumdbProxyOptions): (req: Request, rest: string) => Promise<Response> {
  const { metrics } = o;
  const dbs = new Map(o.dbs.map((d) => [d.name, d]));
  const cache = new SmallCache({ store: o.store, metrics, logger: o.logger, notFoundTtlMs: o.notFoundTtlMs, swrMs: o.swrMs, prefix: "sumdb" });
  // Makes the cache directory usable as GOPROXY=file://... for the sumdb too.
  for (const d of o.dbs) {
    const rel = `sumdb/${d.name}/supported`;
    if (!existsSync(join(o.store.dir, rel))) o.store.writeSync(rel, "");
  }
  // Each database directory is kept complete for file:// clients (tiles.ts).
  const keepers = new Map<string, ReturnType<typeof tileKeeper>>();
  function dbFiles(name: string): TileFiles {
    const base = `sumdb/${name}`;
    return {
      read: async (rel) => {
        const st = await o.store.stat(`${base}/${rel}`);
        return st ? new Uint8Array(await Bun.file(st.path).arrayBuffer()) : null;
      },
      list: (rel) => {
        try {
          return readdirSync(o.store.path(`${base}/${rel}`));
        } catch {
          return [];
        }
      },
      write: async (rel, data) => {
        await o.store.write(`${base}/${rel}`, data);
        o.onStored?.(`${base}/${rel}`, o.store.path(`${base}/${rel}`));
      },
    };
  }
  for (const d of o.dbs) {
    keepers.set(d.name, tileKeeper(dbFiles(d.name), (err) => o.logger.debug(`sumdb: completing tiles of ${d.name}: ${(err as Error)?.message ?? err}`)));
  }
  const onStored = (rel: string, path: string) => {
    o.onStored?.(rel, path);
    const m = /^sumdb\/([^/]+)\/(.+)$/.exec(rel);
    if (m) void keepers.get(m[1]!)?.stored(m[2]!);
  };

  /** Per database: the upstream list that serves it (resolved once, then remembered). */
  const sources = new Map<string, Promise<Upstream[]>>();

  async function discover(d: SumdbConfig): Promise<Upstream[]> {
    if (d.url) return [{ url: d.url, next: null }];
    for (const u of o.upstreams) {
      if (u.url === "off") break;
      try {
        const r = await fetchUpstream([{ ...u, next: null }], `sumdb/${d.name}/supported`, o.upstreamOptions);
        if (r.ok) {
          await r.body.cancel().catch(() => {});
          return [{ url: u.dir !== undefined ? `${u.url}/sumdb/${d.name}` : `${u.url}/sumdb/${d.name}`, dir: u.dir !== undefined ? join(u.dir, "sumdb", d.name) : undefined, next: null }];
        }
      } catch {
        // Unreachable proxy: try the next one, then the database itself.
      }
    }
    return [{ url: `https://${d.name}`, next: null }];
  }

  function source(d: SumdbConfig): Promise<Upstream[]> {
    let s = sources.get(d.name);
    if (!s) {
      s = discover(d);
      sources.set(d.name, s);
    }
    return s;
  }

  async function fetchFrom(d: SumdbConfig, path: string): Promise<FetchResult> {
    const fromBucket = o.mirror ? await o.mirror.get(`sumdb/${d.name}/${path}`) : null;
    if (fromBucket) return fromBucket;
    const list = await source(d);
    try {
      return await fetchUpstream(list, path, o.upstreamOptions);
    } catch (err) {
      // Forget the discovered source so a proxy that comes back is found again.
      if (!d.url) sources.delete(d.name);
      throw err instanceof UpstreamError ? err : new UpstreamError((err as Error).message);
    }
  }

  function answer(req: Request, a: SmallAnswer, name: string, cacheControl: string): Response {
    switch (a.kind) {
      case "file":
      case "data": {
        metrics.inc(a.hit ? "sumdb_hits" : "sumdb_misses");
        const extra: Record<string, string> = a.stale ? { "X-Gostash-Stale": "1" } : {};
        const ctl = a.stale ? "no-store" : cacheControl;
        return a.kind === "file" ? serveFile(req, a, name, ctl, extra) : serveData(req, a.data, a.mtimeMs, name, ctl, extra);
      }
      case "notfound":
        return errorText(a.status, a.message);
      case "error":
        metrics.inc("sumdb_errors");
        return errorText(a.status, a.message);
    }
  }

  /**
   * A partial hash tile "tile/H/L/NNN.p/W" holds the first W hashes (32
   * bytes each) of its tile, and those never change as the log grows: it is
   * a prefix of any wider partial tile and of the full tile. So when a wider
   * one is cached, the narrower one is answered from it without asking the
   * database (this also keeps the proxy working offline for clients whose
   * last known tree is older than ours). Data tiles hold records of varying
   * length and are not derived.
   */
  async function fromWiderTile(db: string, path: string): Promise<{ data: Uint8Array; mtimeMs: number } | null> {
    const m = /^(tile\/([0-9]+)\/[0-9]+\/(?:x[0-9]{3}\/)*[0-9]{3})\.p\/([0-9]+)$/.exec(path);
    if (!m) return null;
    const h = Number(m[2]);
    const w = Number(m[3]);
    if (h < 1 || h > 16 || w < 1 || w >= 2 ** h) return null;
    const tile = `sumdb/${db}/${m[1]}`;
    const candidates = [tile];
    try {
      for (const f of readdirSync(o.store.path(`${tile}.p`))) {
        if (/^[0-9]+$/.test(f) && Number(f) > w) candidates.push(`${tile}.p/${f}`);
      }
    } catch {
      // No partial tiles of this tile cached.
    }
    for (const rel of candidates) {
      const st = await o.store.stat(rel);
      if (!st || st.size < w * 32) continue;
      const data = new Uint8Array(await Bun.file(st.path).slice(0, w * 32).arrayBuffer());
      return { data, mtimeMs: st.mtimeMs };
    }
    return null;
  }

  return async (req, rest) => {
    metrics.inc("sumdb_requests");
    const slash = rest.indexOf("/");
    const name = slash < 0 ? rest : rest.slice(0, slash);
    const path = slash < 0 ? "" : rest.slice(slash + 1);
    const d = dbs.get(name);
    if (!d) return errorText(404, `not found: checksum database ${JSON.stringify(name)} is not proxied here`);
    if (path === "supported") return new Response(null, { status: 200, headers: { "Cache-Control": "no-store" } });
    const rel = `sumdb/${name}/${path}`;
    const short = `public, max-age=${Math.floor(o.ttlMs / 1000)}`;
    if (path === "latest") {
      const a = await cache.get({ rel, ttlMs: o.ttlMs, persist: true, fetch: () => fetchFrom(d, path), onStored });
      return answer(req, a, rel, short);
    }
    if (path.startsWith("lookup/")) {
      const key = path.slice("lookup/".length);
      const at = key.lastIndexOf("@");
      try {
        if (at < 0) throw new PathError("lookup needs module@version");
        unescapePath(key.slice(0, at));
        unescapeVersion(key.slice(at + 1));
      } catch (err) {
        return errorText(400, `bad request: ${(err as Error).message}`);
      }
      const a = await cache.get({ rel, ttlMs: "forever", persist: true, fetch: () => fetchFrom(d, path), onStored });
      return answer(req, a, rel, IMMUTABLE);
    }
    if (TILE.test(path)) {
      const partial = path.includes(".p/");
      if (partial) {
        const derived = await fromWiderTile(name, path);
        if (derived) {
          metrics.inc("sumdb_hits");
          // Stored too: the directory must stay usable as GOPROXY=file://,
          // where nothing derives it for a client that asks for this width.
          if (!(await o.store.stat(rel))) {
            await o.store.write(rel, derived.data).then(
              () => onStored(rel, o.store.path(rel)),
              (err) => o.logger.debug(`sumdb: storing ${rel}: ${(err as Error)?.message ?? err}`),
            );
          }
          return serveData(req, derived.data, derived.mtimeMs, rel, IMMUTABLE);
        }
      }
      const a = await cache.get({ rel, ttlMs: partial ? o.ttlMs : "forever", persist: true, fetch: () => fetchFrom(d, path), onStored });
      return answer(req, a, rel, partial ? short : IMMUTABLE);
    }
    return errorText(404, "not found");
  };
}
