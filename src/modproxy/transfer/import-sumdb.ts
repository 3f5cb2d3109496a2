// Which checksum database `gostash mod import` checks against, with which
// key, and how it reaches it.
//
// The database is the first of --sumdb (default sum.golang.org), reached
// exactly as the module proxy reaches it (sumdb/sources.ts: NAME=URL, else
// through an --upstream that proxies it, else https://NAME), through the
// proxy's own sumdb layer in process (serve/sumdb.ts). So answers already in the store are used
// without asking anyone (import.ts imports the source's sumdb/ files before
// the modules, so a $GOMODCACHE brings the lookups and tiles the go command
// downloaded), and what is fetched is kept for the proxy's clients.
//
// Keys: --sumdb-key (env GOSTASH_SUMDB_KEY, else GOSUMDB), comma-separated;
// each entry is a verifier key "name+hash+key" optionally followed by a URL
// (GOSUMDB's own "key URL" form), or a name the go command knows the key
// of (sumdb/note.ts KNOWN_KEYS). The entry whose name is the database's is
// used.

import type { Logger } from "../../util/log.ts";
import type { Metrics } from "../../util/metrics.ts";
import type { ModProxyConfig } from "../config.ts";
import { createSumdbProxy } from "../serve/sumdb.ts";
import type { ModStore } from "../storage/store.ts";
import { KNOWN_KEYS, parseVerifierKey, type Verifier } from "../sumdb/note.ts";
import { SumdbChecker } from "../sumdb/verify.ts";
import { countedUpstreamOptions } from "../upstream/fetch.ts";

/** The verifier for database `name` from a --sumdb-key value, or null when none is known; a malformed key is a config error. */
export function verifierFor(name: string, keys: string | undefined): Verifier | null {
  for (const entry of (keys ?? "").split(",")) {
    const first = entry.trim().split(/\s+/)[0] ?? "";
    if (!first) continue;
    const vkey = first.includes("+") ? first : KNOWN_KEYS[first];
    if (!vkey || vkey.slice(0, vkey.indexOf("+")) !== name) continue;
    try {
      return parseVerifierKey(vkey);
    } catch (err) {
      throw new Error(`config: --sumdb-key: ${(err as Error).message}`);
    }
  }
  return KNOWN_KEYS[name] ? parseVerifierKey(KNOWN_KEYS[name]!) : null;
}

export interface ImportSumdbOptions {
  cfg: ModProxyConfig;
  store: ModStore;
  /** Null: no key is known, and every lookup is answered "cannot be checked". */
  verifier: Verifier | null;
  metrics: Metrics;
  logger: Logger;
  concurrency?: number;
}

/** A checker for the first --sumdb database, fetching through the proxy's sumdb layer. */
export function createImportSumdb(o: ImportSumdbOptions): SumdbChecker {
  const db = o.cfg.sumdbs[0]!;
  const { metrics } = o;
  const proxy = createSumdbProxy({
    store: o.store,
    dbs: [db],
    upstreams: o.cfg.upstreams,
    ttlMs: o.cfg.listTtlMs,
    // No background refreshes: the command exits when the import is done.
    swrMs: 0,
    notFoundTtlMs: o.cfg.notFoundTtlMs,
    upstreamOptions: countedUpstreamOptions(o.cfg, metrics, "sumdb"),
    metrics,
    logger: o.logger,
  });
  return new SumdbChecker({
    name: db.name,
    verifier: o.verifier,
    concurrency: o.concurrency,
    get: async (path) => {
      const res = await proxy(new Request("http://gostash-mod-import/"), `${db.name}/${path}`);
      return { status: res.status, data: new Uint8Array(await res.arrayBuffer()) };
    },
  });
}
