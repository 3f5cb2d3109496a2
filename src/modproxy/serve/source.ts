// Where a module file missing from the store comes from, in this order:
//
//   1. the shared bucket (storage/mirror.ts), when there is one
//   2. offline (--offline): nowhere else; 404 OFFLINE_NOT_FOUND
//   3. a private path (--private): the go command (upstream/private.ts),
//      even when a rule names an upstream for it
//   4. the upstream list a routing rule gives the module (--rules), else
//      --upstream (upstream/fetch.ts: GOPROXY list semantics)

import type { ModuleRequest } from "../module/layout.ts";
import type { Mirror } from "../storage/mirror.ts";
import { fetchUpstream, type FetchResult, type Upstream, type UpstreamOptions } from "../upstream/fetch.ts";
import type { PrivateSource } from "../upstream/private.ts";

export const OFFLINE_NOT_FOUND = "not found: gostash module proxy is offline and has no copy";

export interface ModuleSourceOptions {
  mirror?: Mirror;
  offline?: boolean;
  priv: PrivateSource | null;
  upstreams: Upstream[];
  /** The upstream list of an "upstream" rule for the module, else null (--upstream). */
  upstreamsFor?: (module: string) => Upstream[] | null;
  upstreamOptions: UpstreamOptions;
}

/** Fetches `rel` (a URL-layout path) of request r. */
export type ModuleSource = (rel: string, r: ModuleRequest) => Promise<FetchResult>;

export function moduleSource(o: ModuleSourceOptions): ModuleSource {
  return async (rel, r) => {
    const fromBucket = o.mirror ? await o.mirror.get(rel) : null;
    if (o.offline) return fromBucket ?? { ok: false, status: 404, message: OFFLINE_NOT_FOUND, from: "offline" };
    if (fromBucket) return fromBucket;
    if (o.priv?.match(r.module)) return o.priv.fetch(r);
    // The rule is decided on the parsed request r, never on rel again: rel
    // is decoded text, and reading it as a URL path a second time could
    // name another module, or none, and send a private path to --upstream.
    return fetchUpstream(o.upstreamsFor?.(r.module) ?? o.upstreams, rel, o.upstreamOptions);
  };
}
