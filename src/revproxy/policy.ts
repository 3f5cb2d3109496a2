// What the reverse proxy may cache, decided from HTTP caching headers.
// The rules are go-cache-plugin's (lib/revproxy), with the shared-cache
// rules of RFC 9111 it leaves out:
//
//   request   only GET without a Range, and without `Cache-Control:
//             no-store`, is served from or stored in the cache; anything
//             else is passed through to the origin.
//   response  only a 200, then
//     disk    `immutable`, or `must-revalidate` with a max-age over 60
//             days: on the local disk and in the bucket, kept until
//             unused for --expiry;
//     memory  a max-age under an hour (minus its Age): in memory, until
//             it is that old;
//     none    `no-store`, `no-cache`, anything else.
//   and, unlike go-cache-plugin, for a cache shared between users:
//   `private` is never stored, nor is the answer to a request carrying
//   Authorization unless it says `public`, `s-maxage` or `must-revalidate`
//   (RFC 9111 3.5); nor one with `Vary: *`. Other Vary values are kept
//   with the entry and compared (vary.ts).

import { varyNames } from "./vary.ts";

export type Storage = "disk" | "memory" | "none";

export interface Decision {
  storage: Storage;
  /** How long a memory entry stays fresh. */
  ttlMs: number;
}

export interface CacheControl {
  directives: Set<string>;
  /** max-age in seconds, or null. */
  maxAge: number | null;
}

const SIXTY_DAYS_S = 60 * 86_400;
const ONE_HOUR_S = 3_600;
const NONE: Decision = { storage: "none", ttlMs: 0 };

export function parseCacheControl(header: string | null): CacheControl {
  const directives = new Set<string>();
  let maxAge: number | null = null;
  for (const part of (header ?? "").split(",")) {
    const [rawName, ...rest] = part.trim().split("=");
    const name = rawName!.trim().toLowerCase();
    if (!name) continue;
    directives.add(name);
    const value = rest.join("=").trim().replace(/^"|"$/g, "");
    if (name === "max-age" && /^\d+$/.test(value)) maxAge = Number(value);
  }
  return { directives, maxAge };
}

/** May this request be answered from the cache, and its answer stored? */
export function requestCacheable(req: Request): boolean {
  if (req.method !== "GET" || req.headers.has("range")) return false;
  return !parseCacheControl(req.headers.get("cache-control")).directives.has("no-store");
}

/** Where a response to a cacheable request may be kept. */
export function decideStorage(status: number, headers: Headers, requestHadAuthorization: boolean): Decision {
  if (status !== 200) return NONE;
  const cc = parseCacheControl(headers.get("cache-control"));
  const d = cc.directives;
  if (d.has("no-store") || d.has("no-cache") || d.has("private")) return NONE;
  if (varyNames(headers.get("vary")).includes("*")) return NONE;
  if (requestHadAuthorization && !d.has("public") && !d.has("s-maxage") && !d.has("must-revalidate")) return NONE;
  if (d.has("immutable")) return { storage: "disk", ttlMs: 0 };
  if (d.has("must-revalidate") && cc.maxAge !== null && cc.maxAge > SIXTY_DAYS_S) return { storage: "disk", ttlMs: 0 };
  const age = Number(headers.get("age") ?? 0) || 0;
  if (cc.maxAge !== null && cc.maxAge > 0 && cc.maxAge < ONE_HOUR_S && cc.maxAge > age) {
    return { storage: "memory", ttlMs: (cc.maxAge - age) * 1000 };
  }
  return NONE;
}

/** How an answer was served, in the X-Cache header (go-cache-plugin's words, plus "shared" and the refusals). */
export const X_CACHE = {
  memory: "hit, memory",
  local: "hit, local",
  remote: "hit, remote",
  fetchedDisk: "fetch, cached",
  fetchedMemory: "fetch, cached, volatile",
  /** Joined a fetch of the same URL already under way. */
  shared: "fetch, cached, shared",
  uncached: "fetch, uncached",
  /** The proxy answered itself: not a listed host, a bad token, an origin that failed. */
  refused: "refused",
  error: "error",
} as const;
