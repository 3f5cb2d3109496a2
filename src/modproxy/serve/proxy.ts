// The module proxy as a `Request -> Response` function, mounted at /mod on
// the daemon's HTTP router (GOPROXY=http://host:port/mod):
//
//   GET|HEAD /mod/<module>/@v/list              versions (cached --modproxy-list-ttl)
//   GET|HEAD /mod/<module>/@latest              latest version info (same)
//   GET|HEAD /mod/<module>/@v/<version>.info    canonical: forever; queries ("master"): same as list
//   GET|HEAD /mod/<module>/@v/<version>.mod     forever
//   GET|HEAD /mod/<module>/@v/<version>.zip     forever; streamed while it downloads
//   GET|HEAD /mod/sumdb/<name>/...              checksum database proxy (sumdb.ts)
//
// list, @latest, .info and .mod: module-files.ts; zips: zip.ts; answers
// and their counters: answer.ts; where missing files come from:
// upstream/source.ts.
//
// Modules matching --private are fetched with the go command from version
// control instead of the upstream (upstream/private.ts), and
// checksum-database lookups of their paths are refused with 403 so private
// names never reach a public database (private-lookups.ts). The bucket and
// offline mode treat them like any other module.
//
// <module> and <version> are case-encoded ("!" + lower case). 404 and 410
// answers are plain text, so the go command falls through to the next entry
// of its GOPROXY list. Invalid paths get 400 before anything touches the
// disk. Answers carry Cache-Control (immutable for module files), ETag, and
// stored files honour Range and If-None-Match. With --rules, rules.ts
// answers or filters first (exclude, versions, redirect, upstream).

import type { Logger } from "../../util/log.ts";
import type { Metrics } from "../../util/metrics.ts";
import type { ModProxyConfig } from "../config.ts";
import { parseModRequest, type ModRequest } from "../module/layout.ts";
import { PathError } from "../module/path.ts";
import type { Mirror } from "../storage/mirror.ts";
import { SmallCache } from "../storage/small-cache.ts";
import { ModStore } from "../storage/store.ts";
import { countedUpstreamOptions } from "../upstream/fetch.ts";
import { createPrivateSource } from "../upstream/private.ts";
import { moduleSource } from "./source.ts";
import { type AnswerOptions, answerer, sentCounter } from "./answer.ts";
import { moduleFiles } from "./module-files.ts";
import { refusePrivateLookup } from "./private-lookups.ts";
import { errorText } from "./respond.ts";
import { rulesRoute } from "./rules.ts";
import { createSumdbProxy, type SumdbHandler } from "./sumdb.ts";
import { createOfflineSumdb } from "./sumdb-offline.ts";
import { ZipServer } from "./zip.ts";

/** The settings from flags (config.ts) plus what the daemon wires in. */
export interface ModProxyOptions extends Omit<ModProxyConfig, "offline"> {
  metrics: Metrics;
  logger: Logger;
  /** Mount point, default "/mod". */
  prefix?: string;
  /** Called with (URL-layout path, absolute file) whenever a file is stored. */
  onStored?: (rel: string, path: string) => void;
  /** The shared bucket: asked before the upstream, filled after stores (storage/mirror.ts). */
  mirror?: Mirror;
  /** Never contact an upstream: answer from the store (and the bucket) only (offline.ts, sumdb-offline.ts). */
  offline?: boolean;
  /** How often the --rules file may be checked for changes (default 1s; rules/rules-file.ts). */
  rulesCheckEveryMs?: number;
  /** Told the module path of every valid module request (the status page's most requested modules). */
  onModuleRequest?: (module: string) => void;
}

export interface ModProxy {
  fetch: (req: Request) => Promise<Response>;
  store: ModStore;
  mirror?: Mirror;
}

/** Every stored file goes to the bucket and to the caller's onStored. */
function storedHook(o: ModProxyOptions): ((rel: string, path: string) => void) | undefined {
  const user = o.onStored;
  if (!o.mirror && !user) return undefined;
  return (rel, path) => {
    o.mirror?.put(rel, path);
    user?.(rel, path);
  };
}

function sumdbHandler(o: ModProxyOptions, store: ModStore, onStored: ((rel: string, path: string) => void) | undefined): SumdbHandler {
  if (o.offline) return createOfflineSumdb({ store, dbs: o.sumdbs, mirror: o.mirror, metrics: o.metrics });
  return createSumdbProxy({
    store,
    dbs: o.sumdbs,
    upstreams: o.upstreams,
    ttlMs: o.listTtlMs,
    swrMs: o.swrMs,
    notFoundTtlMs: o.notFoundTtlMs,
    upstreamOptions: countedUpstreamOptions(o, o.metrics, "sumdb"),
    metrics: o.metrics,
    logger: o.logger,
    onStored,
    mirror: o.mirror,
  });
}

/** Parses a request of the mount point, answering 405, 404 or 400 for what is not one. */
function parseRequest(req: Request, prefix: string, metrics: Metrics): ModRequest | Response {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("method not allowed\n", { status: 405, headers: { Allow: "GET, HEAD", "Content-Type": "text/plain; charset=utf-8" } });
  }
  const pathname = new URL(req.url).pathname;
  if (pathname !== prefix && !pathname.startsWith(`${prefix}/`)) return errorText(404, "not found");
  try {
    return parseModRequest(pathname.slice(prefix.length + 1));
  } catch (err) {
    if (!(err instanceof PathError)) throw err;
    metrics.inc("modproxy_bad_requests");
    return errorText(400, `bad request: ${err.message}`);
  }
}

export function createModProxy(o: ModProxyOptions): ModProxy {
  const prefix = (o.prefix ?? "/mod").replace(/\/+$/, "");
  const store = new ModStore(o.dir);
  const { metrics, logger } = o;
  const rules = rulesRoute(o); // --rules: exclude, versions, redirect, per-module upstreams
  const small = new SmallCache({ store, metrics, logger, notFoundTtlMs: o.notFoundTtlMs, swrMs: o.swrMs, prefix: "modproxy" });
  const answers: AnswerOptions = { metrics, family: "modproxy", notFoundCacheControl: `public, max-age=${Math.floor(o.notFoundTtlMs / 1000)}` };
  const answer = answerer(answers);
  const priv = o.private ? createPrivateSource({ ...o.private, metrics, logger }) : null;
  const source = moduleSource({
    mirror: o.mirror,
    offline: o.offline,
    priv,
    upstreams: o.upstreams,
    upstreamsFor: rules ? (module) => rules.upstreamsFor(module) : undefined,
    upstreamOptions: countedUpstreamOptions(o, metrics, "modproxy"),
  });
  const onStored = storedHook(o);
  const sumdb = sumdbHandler(o, store, onStored);
  const files = moduleFiles({ store, small, source, answer, offline: o.offline, listTtlMs: o.listTtlMs, onStored });
  const zips = new ZipServer({ store, small, upstream: source, answer, countSent: sentCounter(answers), metrics, logger, onStored });

  async function handle(req: Request): Promise<Response> {
    const r = parseRequest(req, prefix, metrics);
    if (r instanceof Response) return r;
    if (r.kind === "sumdb") return refusePrivateLookup(priv, metrics, r.rest) ?? sumdb(req, r.rest);
    metrics.inc("modproxy_requests");
    o.onModuleRequest?.(r.module);
    return r.kind === "file" && r.file === "zip" ? zips.serve(req, { ...r, file: "zip" }) : files(req, r);
  }

  return {
    store,
    mirror: o.mirror,
    fetch: async (req) => {
      const t0 = performance.now();
      try {
        return await (rules ? rules.serve(req, prefix, handle) : handle(req));
      } catch (err) {
        logger.error(`modproxy: ${req.method} ${req.url}: ${(err as Error).stack ?? err}`);
        metrics.inc("modproxy_errors");
        return errorText(500, `internal error: ${(err as Error).message}`);
      } finally {
        metrics.observe("modproxy_request_seconds", (performance.now() - t0) / 1000);
      }
    },
  };
}
