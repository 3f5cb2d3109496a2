// The small module answers, through the small-answer cache
// (storage/small-cache.ts):
//
//   <module>/@v/list              stored, refreshed after --modproxy-list-ttl
//   <module>/@latest              stored, refreshed likewise
//   <module>/@v/<version>.info    canonical version: stored forever
//   <module>/@v/<version>.mod     stored forever
//   <module>/@v/<query>.info      a query ("master", "v1"): memory only, list ttl
//
// Offline, list and @latest are computed from the store (offline.ts) and
// queries are not found. Each answer is validated before it is stored
// (module/validate.ts).

import { latestRel, listRel, modFileRel, type ModuleRequest } from "../module/layout.ts";
import { validateInfo, validateList, validateMod } from "../module/validate.ts";
import type { SmallCache } from "../storage/small-cache.ts";
import type { ModStore } from "../storage/store.ts";
import { type ModuleSource, OFFLINE_NOT_FOUND } from "./source.ts";
import type { Answer } from "./answer.ts";
import { offlineLatest, offlineList } from "./offline.ts";
import { IMMUTABLE } from "./respond.ts";

export interface ModuleFilesOptions {
  store: ModStore;
  small: SmallCache;
  source: ModuleSource;
  answer: Answer;
  offline?: boolean;
  listTtlMs: number;
  onStored?: (rel: string, path: string) => void;
}

/** Answers list, @latest, .info and .mod requests (zips: zip.ts). */
export function moduleFiles(o: ModuleFilesOptions): (req: Request, r: ModuleRequest) => Promise<Response> {
  const { small, answer, onStored } = o;
  const shortCache = `public, max-age=${Math.max(0, Math.floor(o.listTtlMs / 1000))}`;
  const fetchOf = (rel: string, r: ModuleRequest) => () => o.source(rel, r);

  return async (req, r) => {
    switch (r.kind) {
      case "list": {
        const rel = listRel(r.escModule);
        if (o.offline) return answer(req, offlineList(o.store, r.escModule), rel, "no-cache");
        const a = await small.get({ rel, ttlMs: o.listTtlMs, persist: true, fetch: fetchOf(rel, r), validate: validateList, onStored });
        return answer(req, a, rel, shortCache);
      }
      case "latest": {
        const rel = latestRel(r.escModule);
        if (o.offline) return answer(req, await offlineLatest(o.store, r.escModule), rel, "no-cache");
        const a = await small.get({ rel, ttlMs: o.listTtlMs, persist: true, fetch: fetchOf(rel, r), validate: (d) => void validateInfo(d, null), onStored });
        return answer(req, a, rel, shortCache);
      }
      case "file": {
        const rel = modFileRel(r.escModule, r.escVersion, r.file);
        if (r.file === "mod") {
          const a = await small.get({ rel, ttlMs: "forever", persist: true, fetch: fetchOf(rel, r), validate: (d) => validateMod(d, r.module), onStored });
          return answer(req, a, rel, IMMUTABLE);
        }
        if (r.canonical) {
          const a = await small.get({ rel, ttlMs: "forever", persist: true, fetch: fetchOf(rel, r), validate: (d) => void validateInfo(d, r.version), onStored });
          return answer(req, a, rel, IMMUTABLE);
        }
        if (o.offline) return answer(req, { kind: "notfound", status: 404, message: OFFLINE_NOT_FOUND }, rel, "");
        const a = await small.get({ rel, ttlMs: o.listTtlMs, persist: false, fetch: fetchOf(rel, r), validate: (d) => void validateInfo(d, null) });
        return answer(req, a, rel, shortCache);
      }
    }
  };
}
