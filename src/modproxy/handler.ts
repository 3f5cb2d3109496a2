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
// Modules matching --private are fetched with the go command from version
// control instead of the upstream (private.ts), and checksum-database lookups
// of their paths are refused with 403 so private names never reach a public
// database. The bucket and offline mode treat them like any other module.
//
// <module> and <version> are case-encoded ("!" + lower case). 404 and 410
// answers are plain text, so the go command falls through to the next entry
// of its GOPROXY list. Invalid paths get 400 before anything touches the
// disk. Answers carry Cache-Control (immutable for module files), ETag, and
// stored files honour Range and If-None-Match. With --rules, route.ts
// answers or filters first (exclude, versions, redirect, upstream).

import type { ModProxyConfig } from "./config.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { SmallCache, type SmallAnswer } from "./cache.ts";
import { PathError, parseModRequest, unescapePath, type ModRequest } from "./paths.ts";
import { createPrivateSource, type ModuleRequest } from "./private.ts";
import { IMMUTABLE, errorText, serveData, serveFile } from "./respond.ts";
import { StreamFlights, SingleFlight, type Flight } from "./singleflight.ts";
import { latestRel, listRel, modFileRel, ModStore } from "./store.ts";
import type { Mirror } from "./mirror.ts";
import { createOfflineSumdb, OFFLINE_NOT_FOUND, offlineLatest, offlineList } from "./offline.ts";
import { rulesRoute } from "./route.ts";
import { createSumdbProxy, type SumdbConfig } from "./sumdb.ts";
import { fetchUpstream, type FetchResult, type Upstream, type UpstreamOptions } from "./upstream.ts";
import { MAX_ZIP, ValidationError, validateInfo, validateList, validateMod, validateZip } from "./validate.ts";

/** The settings from flags (config.ts) plus what the daemon wires in. */
export interface ModProxyOptions extends Omit<ModProxyConfig, "offline"> {
  metrics: Metrics;
  logger: Logger;
  /** Mount point, default "/mod". */
  prefix?: string;
  /** Called with (URL-layout path, absolute file) whenever a file is stored. */
  onStored?: (rel: string, path: string) => void;
  /** The shared bucket: asked before the upstream, filled after stores (mirror.ts). */
  mirror?: Mirror;
  /** Never contact an upstream: answer from the store (and the bucket) only (offline.ts). */
  offline?: boolean;
  /** How often the --rules file may be checked for changes (default 1s; rules-file.ts). */
  rulesCheckEveryMs?: number;
}

export interface ModProxy {
  fetch: (req: Request) => Promise<Response>;
  store: ModStore;
  mirror?: Mirror;
}

export function createModProxy(o: ModProxyOptions): ModProxy {
  const prefix = (o.prefix ?? "/mod").replace(/\/+$/, "");
  const store = new ModStore(o.dir);
  const { metrics, logger } = o;
  const rules = rulesRoute(o); // --rules: exclude, versions, redirect, per-module upstreams (route.ts)
  const small = new SmallCache({ store, metrics, logger, notFoundTtlMs: o.notFoundTtlMs, swrMs: o.swrMs, prefix: "modproxy" });
  const flights = new StreamFlights();
  const zipStarts = new SingleFlight<{ flight: Flight } | { stored: true } | { notfound: FetchResult & { ok: false } }>();
  const upOpts: UpstreamOptions = {
    timeoutMs: o.timeoutMs,
    retries: o.retries,
    onFetch: (_from, seconds, ok) => {
      metrics.inc("modproxy_upstream_fetches");
      if (!ok) metrics.inc("modproxy_upstream_failures");
      metrics.observe("modproxy_upstream_seconds", seconds);
    },
  };
  const priv = o.private ? createPrivateSource({ ...o.private, metrics, logger }) : null;
  const upstream = async (rel: string, r: ModuleRequest): Promise<FetchResult> => {
    const fromBucket = o.mirror ? await o.mirror.get(rel) : null;
    if (o.offline) return fromBucket ?? { ok: false, status: 404, message: OFFLINE_NOT_FOUND, from: "offline" };
    if (fromBucket) return fromBucket;
    // A private path is fetched by the go command even if a rule names an upstream for it.
    if (priv?.match(r.module)) return priv.fetch(r);
    return fetchUpstream(rules?.upstreamsFor(rel) ?? o.upstreams, rel, upOpts);
  };
  const userStored = o.onStored;
  const onStored =
    o.mirror || userStored
      ? (rel: string, path: string) => {
          o.mirror?.put(rel, path);
          userStored?.(rel, path);
        }
      : undefined;
  const sumdb = o.offline ? createOfflineSumdb(store, o.sumdbs, o.mirror) : createSumdbProxy({
    store,
    dbs: o.sumdbs,
    upstreams: o.upstreams,
    ttlMs: o.listTtlMs,
    swrMs: o.swrMs,
    notFoundTtlMs: o.notFoundTtlMs,
    upstreamOptions: { ...upOpts, onFetch: (_f, s, ok) => (metrics.inc("sumdb_upstream_fetches"), ok || metrics.inc("sumdb_upstream_failures"), metrics.observe("sumdb_upstream_seconds", s)) },
    metrics,
    logger,
    onStored,
    mirror: o.mirror,
  });
  const shortCache = () => `public, max-age=${Math.max(0, Math.floor(o.listTtlMs / 1000))}`;

  function answer(req: Request, a: SmallAnswer, name: string, cacheControl: string): Response {
    switch (a.kind) {
      case "file":
      case "data": {
        if (a.hit) metrics.inc("modproxy_hits");
        else metrics.inc("modproxy_misses");
        const extra: Record<string, string> = a.stale ? { Warning: '110 - "Response is Stale"', "X-Gostash-Stale": "1" } : {};
        // A copy served because the upstream failed must not be cached downstream.
        const ctl = a.stale ? "no-store" : cacheControl;
        if (a.kind === "file") {
          metrics.inc("modproxy_bytes_served", req.method === "HEAD" ? 0 : a.size);
          return serveFile(req, a, name, ctl, extra);
        }
        metrics.inc("modproxy_bytes_served", req.method === "HEAD" ? 0 : a.data.length);
        return serveData(req, a.data, a.mtimeMs, name, ctl, extra);
      }
      case "notfound":
        metrics.inc("modproxy_not_found");
        return errorText(a.status, a.message, `public, max-age=${Math.floor(o.notFoundTtlMs / 1000)}`);
      case "error":
        metrics.inc("modproxy_errors");
        return errorText(a.status, a.message);
    }
  }

  async function serveZip(req: Request, r: ModRequest & { kind: "file" }): Promise<Response> {
    const rel = modFileRel(r.escModule, r.escVersion, "zip");
    const stored = await store.stat(rel);
    if (stored) {
      metrics.inc("modproxy_hits");
      if (req.method !== "HEAD") metrics.inc("modproxy_bytes_served", stored.size);
      return serveFile(req, stored, rel, IMMUTABLE);
    }
    const neg = small.negative(rel);
    if (neg) return answer(req, { kind: "notfound", ...neg }, rel, "");
    let flight = flights.get(rel);
    if (!flight) {
      const started = await zipStarts.do(rel, async () => {
        if (await store.stat(rel)) return { stored: true as const };
        const res = await upstream(rel, r);
        if (!res.ok) return { notfound: res };
        if (res.size !== null && res.size > MAX_ZIP) {
          res.body.cancel().catch(() => {});
          throw new Error(`zip is ${res.size} bytes, more than the ${MAX_ZIP} the go command accepts`);
        }
        const f = flights.start(rel, store.tempFor(rel));
        f.expected = res.size;
        const t0 = performance.now();
        f.run(res.body, {
          limit: MAX_ZIP,
          validate: (tmp) => validateZip(tmp, r.module, r.version),
          commit: (tmp) => store.commit(tmp, rel),
          discard: (tmp) => store.discard(tmp),
        }).then(() => {
          metrics.observe("modproxy_zip_download_seconds", (performance.now() - t0) / 1000);
          if (f.state === "done") {
            metrics.inc("modproxy_bytes_fetched", f.written);
            onStored?.(rel, store.path(rel));
          } else {
            metrics.inc(f.error instanceof ValidationError ? "modproxy_refused" : "modproxy_upstream_errors");
            logger.warn(`modproxy: ${rel}: not stored: ${f.error?.message}`);
          }
        });
        return { flight: f };
      }).promise.catch((err: Error) => ({ error: err }) as const);
      if ("error" in started) {
        metrics.inc("modproxy_upstream_errors");
        return answer(req, { kind: "error", status: (started.error as { status?: number }).status ?? 502, message: started.error.message }, rel, "");
      }
      if ("notfound" in started) {
        small.rememberNotFound(rel, started.notfound.status, started.notfound.message);
        return answer(req, { kind: "notfound", status: started.notfound.status, message: started.notfound.message }, rel, "");
      }
      if ("stored" in started) return serveZip(req, r);
      flight = started.flight;
    }
    metrics.inc("modproxy_misses");
    if (req.method === "HEAD") {
      await flight.finished;
      if (flight.state !== "done") return answer(req, { kind: "error", status: 502, message: flight.error?.message ?? "download failed" }, rel, "");
      return serveZip(req, r);
    }
    const body = flight.attach();
    if (!body) {
      // Finished between the lookups: it is stored now, or it failed.
      if (flight.state === "done") return serveZip(req, r);
      return answer(req, { kind: "error", status: 502, message: flight.error?.message ?? "download failed" }, rel, "");
    }
    // No Content-Length: the body ends cleanly only once the zip has been
    // validated, and errors otherwise, so a client can never take a
    // refused zip for a complete one.
    return new Response(body, { status: 200, headers: { "Content-Type": "application/zip", "Cache-Control": IMMUTABLE } });
  }

  /**
   * 403 for "<db>/lookup/<private module>@<version>": asking a checksum
   * database about a private path would publish its name (tiles name no
   * module and pass). The go command shows the message to the user.
   */
  function refusePrivateLookup(rest: string): Response | null {
    const m = /^([^/]+)\/lookup\/(.+)@[^@/]*$/.exec(rest);
    if (!priv || !m) return null;
    let module: string;
    try {
      module = unescapePath(m[2]!);
    } catch {
      return null; // the sumdb proxy answers 400
    }
    const pattern = priv.match(module);
    if (!pattern) return null;
    metrics.inc("modproxy_private_sumdb_refused");
    return errorText(
      403,
      `gostash: ${module} is a private module (it matches ${JSON.stringify(pattern)} in --private), so its checksum is not looked up in ${m[1]}: ` +
        `set GONOSUMDB=${pattern} (or GOPRIVATE=${pattern}) for the go command`,
    );
  }

  async function handle(req: Request): Promise<Response> {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { Allow: "GET, HEAD", "Content-Type": "text/plain; charset=utf-8" } });
    }
    const pathname = new URL(req.url).pathname;
    if (pathname !== prefix && !pathname.startsWith(`${prefix}/`)) return errorText(404, "not found");
    const rest = pathname.slice(prefix.length + 1);
    let r: ModRequest;
    try {
      r = parseModRequest(rest);
    } catch (err) {
      if (err instanceof PathError) {
        metrics.inc("modproxy_bad_requests");
        return errorText(400, `bad request: ${err.message}`);
      }
      throw err;
    }
    if (r.kind === "sumdb") return refusePrivateLookup(r.rest) ?? sumdb(req, r.rest);
    metrics.inc("modproxy_requests");
    switch (r.kind) {
      case "list": {
        if (o.offline) return offlineList(req, store, r.escModule);
        const rel = listRel(r.escModule);
        const a = await small.get({ rel, ttlMs: o.listTtlMs, persist: true, fetch: () => upstream(rel, r), validate: validateList, onStored });
        return answer(req, a, rel, shortCache());
      }
      case "latest": {
        if (o.offline) return offlineLatest(req, store, r.escModule);
        const rel = latestRel(r.escModule);
        const a = await small.get({ rel, ttlMs: o.listTtlMs, persist: true, fetch: () => upstream(rel, r), validate: (d) => void validateInfo(d, null), onStored });
        return answer(req, a, rel, shortCache());
      }
      case "file": {
        const rel = modFileRel(r.escModule, r.escVersion, r.file);
        if (r.file === "zip") return serveZip(req, r);
        if (r.file === "mod") {
          const a = await small.get({ rel, ttlMs: "forever", persist: true, fetch: () => upstream(rel, r), validate: (d) => validateMod(d, r.module), onStored });
          return answer(req, a, rel, IMMUTABLE);
        }
        if (r.canonical) {
          const a = await small.get({ rel, ttlMs: "forever", persist: true, fetch: () => upstream(rel, r), validate: (d) => void validateInfo(d, r.version), onStored });
          return answer(req, a, rel, IMMUTABLE);
        }
        // A query such as "master" or "v1": memory only, short-lived.
        if (o.offline) return errorText(404, OFFLINE_NOT_FOUND);
        const a = await small.get({ rel, ttlMs: o.listTtlMs, persist: false, fetch: () => upstream(rel, r), validate: (d) => void validateInfo(d, null) });
        return answer(req, a, rel, shortCache());
      }
    }
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
