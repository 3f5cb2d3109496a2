// Offline mode (`--offline`, GOSTASH_OFFLINE): the proxy never contacts an
// upstream proxy or checksum database. Everything is answered from the
// disk store (and the S3 bucket when one is configured, proxy.ts):
//
//   <module>/@v/<version>.info|.mod|.zip   stored copy, else the bucket, else 404
//   <module>/@v/list                       the canonical versions stored (those
//                                          with a .info or .mod), sorted by
//                                          semver; pseudo-versions left out, as
//                                          proxy.golang.org does
//   <module>/@latest                       .info JSON of the highest release,
//                                          else the highest prerelease (pseudo-
//                                          versions included); 404 if none
//   <module>/@v/<query>.info               404 (queries need the upstream)
//   sumdb/<name>/...                       stored answers only, else 404
//                                          (sumdb-offline.ts)
//
// 404 (never 5xx) for everything unknown, so a go command with a GOPROXY list
// falls through to its next entry. list and @latest are small answers like
// the cached ones (storage/small-cache.ts), answered and counted by answer.ts.

import { readdirSync } from "node:fs";
import { escapeVersion, isCanonicalVersion, PathError, unescapeVersion } from "../module/path.ts";
import { compareSemver, isPseudoVersion, latestOf } from "../module/semver.ts";
import type { ModStore } from "../storage/store.ts";
import { OFFLINE_NOT_FOUND } from "./source.ts";
import type { SmallAnswer } from "../storage/small-cache.ts";

/** Canonical versions of a module with a stored .info or .mod, sorted by semver. */
export function storedVersions(store: ModStore, escModule: string): string[] {
  let names: string[];
  try {
    names = readdirSync(store.path(`${escModule}/@v`));
  } catch {
    return [];
  }
  const out = new Set<string>();
  for (const n of names) {
    const m = /^(.+)\.(info|mod)$/.exec(n);
    if (!m) continue;
    try {
      const v = unescapeVersion(m[1]!);
      if (isCanonicalVersion(v)) out.add(v);
    } catch (err) {
      if (!(err instanceof PathError)) throw err;
    }
  }
  return [...out].sort(compareSemver);
}

const NOT_STORED: SmallAnswer = { kind: "notfound", status: 404, message: OFFLINE_NOT_FOUND };

/** `list` computed from the store. */
export function offlineList(store: ModStore, escModule: string): SmallAnswer {
  const versions = storedVersions(store, escModule).filter((v) => !isPseudoVersion(v));
  if (versions.length === 0 && storedVersions(store, escModule).length === 0) return NOT_STORED;
  const data = new TextEncoder().encode(versions.map((v) => `${v}\n`).join(""));
  return { kind: "data", data, mtimeMs: Date.now(), stale: false, hit: true };
}

/** `@latest` computed from the store, as .info JSON (the stored .info when there is one). */
export async function offlineLatest(store: ModStore, escModule: string): Promise<SmallAnswer> {
  const v = latestOf(storedVersions(store, escModule));
  if (!v) return NOT_STORED;
  const escV = escapeVersion(v);
  const info = await store.stat(`${escModule}/@v/${escV}.info`);
  let data: Uint8Array | null = null;
  if (info) {
    try {
      const text = await Bun.file(info.path).text();
      if ((JSON.parse(text) as { Version?: unknown }).Version === v) data = new TextEncoder().encode(text);
    } catch {
      data = null;
    }
  }
  data ??= new TextEncoder().encode(`${JSON.stringify({ Version: v })}\n`);
  return { kind: "data", data, mtimeMs: Date.now(), stale: false, hit: true };
}
