// Where each checksum database is fetched from: "name=URL" in --sumdb gives
// it explicitly; otherwise, like the go command, each upstream proxy is
// asked whether it proxies the database (<upstream>/sumdb/<name>/supported),
// and failing that the database is fetched directly from https://<name>.
// The answer is remembered, and forgotten when the source fails, so a proxy
// that comes back is found again. The bucket (when there is one) is asked
// before any of them.

import type { Mirror } from "../storage/mirror.ts";
import { fetchUpstream, type FetchResult, type Upstream, type UpstreamOptions, UpstreamError } from "../upstream/fetch.ts";
import type { SumdbConfig } from "./databases.ts";
import { join } from "node:path";

export interface SumdbSourceOptions {
  upstreams: Upstream[];
  upstreamOptions: UpstreamOptions;
  mirror?: Mirror;
}

/** Fetches `path` ("lookup/...", "tile/...", "latest") of database d. */
export type SumdbFetch = (d: SumdbConfig, path: string) => Promise<FetchResult>;

export function sumdbSources(o: SumdbSourceOptions): SumdbFetch {
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
          return [{ url: `${u.url}/sumdb/${d.name}`, dir: u.dir !== undefined ? join(u.dir, "sumdb", d.name) : undefined, next: null }];
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

  return async (d, path) => {
    const fromBucket = o.mirror ? await o.mirror.get(`sumdb/${d.name}/${path}`) : null;
    if (fromBucket) return fromBucket;
    const list = await source(d);
    try {
      return await fetchUpstream(list, path, o.upstreamOptions);
    } catch (err) {
      // Forget the discovered source so a proxy that comes back is found again.
      if (!d.url) sources.delete(d.name);
      throw err instanceof UpstreamError ? err : new UpstreamError((err as Error).message, 502, { cause: err });
    }
  };
}
