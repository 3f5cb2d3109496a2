// Small answers (.info, .mod, list, @latest, version queries, sumdb lookups,
// tiles, latest): fetched whole (they are capped at 16 MiB), validated,
// written atomically, and shared by all concurrent askers.
//
// Freshness, for answers that can change (list, @latest, sumdb latest,
// partial tiles, queries):
//   age < ttl                      served as is
//   ttl <= age < ttl + swr         served at once, refreshed in the background
//   older, or missing              fetched; if the upstream fails, whatever
//                                  copy there is, however old, is served
//                                  ("stale serve", counted in the metrics)
// Immutable answers (canonical .info/.mod, sumdb lookups, full tiles) are
// kept forever. "Not found" answers are remembered in memory for a short
// time so a burst of misses costs one upstream round trip.

import type { Logger } from "../../util/log.ts";
import type { Metrics } from "../../util/metrics.ts";
import { SingleFlight } from "../../util/singleflight.ts";
import { MAX_SMALL } from "../module/validate.ts";
import { ValidationError } from "../module/validation-error.ts";
import { type FetchResult, UpstreamError } from "../upstream/fetch.ts";
import type { ModStore } from "./store.ts";

export type SmallAnswer =
  | { kind: "file"; path: string; size: number; mtimeMs: number; stale: boolean; hit: boolean }
  | { kind: "data"; data: Uint8Array; mtimeMs: number; stale: boolean; hit: boolean }
  | { kind: "notfound"; status: 404 | 410; message: string }
  | { kind: "error"; status: number; message: string };

export interface SmallRequest {
  /** Cache key; for persisted answers also the store path (URL layout). */
  rel: string;
  /** "forever" for immutable answers. */
  ttlMs: number | "forever";
  /** Keep on disk (true) or in memory only (queries). */
  persist: boolean;
  fetch: () => Promise<FetchResult>;
  validate?: (data: Uint8Array) => void;
  /** Called after a new copy is stored (e.g. to mirror it). */
  onStored?: (rel: string, path: string) => void;
}

interface MemEntry {
  data: Uint8Array;
  at: number;
}

export interface SmallCacheOptions {
  store: ModStore;
  metrics: Metrics;
  logger: Logger;
  notFoundTtlMs: number;
  /** Stale-while-revalidate window after the ttl. */
  swrMs: number;
  /** Metric name prefix ("modproxy" or "sumdb"). */
  prefix: string;
}

export async function readAll(body: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > limit) {
      reader.cancel().catch(() => {});
      throw new ValidationError(`answer larger than ${limit} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

export class SmallCache {
  private readonly flights = new SingleFlight<SmallAnswer>();
  private readonly notFound = new Map<string, { status: 404 | 410; message: string; until: number }>();
  private readonly mem = new Map<string, MemEntry>();

  constructor(private readonly o: SmallCacheOptions) {}

  private m(name: string, n = 1): void {
    this.o.metrics.inc(`${this.o.prefix}_${name}`, n);
  }

  /** A remembered "not found" for rel, if still fresh. */
  negative(rel: string): { status: 404 | 410; message: string } | null {
    const nf = this.notFound.get(rel);
    if (!nf) return null;
    if (nf.until <= Date.now()) {
      this.notFound.delete(rel);
      return null;
    }
    return nf;
  }

  rememberNotFound(rel: string, status: 404 | 410, message: string): void {
    if (this.o.notFoundTtlMs <= 0) return;
    if (this.notFound.size > 100_000) this.notFound.clear();
    this.notFound.set(rel, { status, message, until: Date.now() + this.o.notFoundTtlMs });
  }

  async get(r: SmallRequest): Promise<SmallAnswer> {
    const now = Date.now();
    // What we have.
    let have: SmallAnswer | null = null;
    if (r.persist) {
      const st = await this.o.store.stat(r.rel);
      if (st) have = { kind: "file", path: st.path, size: st.size, mtimeMs: st.mtimeMs, stale: false, hit: true };
    } else {
      const e = this.mem.get(r.rel);
      if (e) have = { kind: "data", data: e.data, mtimeMs: e.at, stale: false, hit: true };
    }
    if (have && (have.kind === "file" || have.kind === "data")) {
      if (r.ttlMs === "forever") return have;
      const age = now - have.mtimeMs;
      if (age < r.ttlMs) return have;
      if (age < r.ttlMs + this.o.swrMs) {
        this.m("background_refreshes");
        this.refresh(r).catch(() => {});
        return have;
      }
    }
    const neg = this.negative(r.rel);
    if (neg) return { kind: "notfound", ...neg };
    const fresh = await this.refresh(r);
    if (fresh.kind === "error" && have && (have.kind === "file" || have.kind === "data")) {
      this.m("stale_serves");
      this.o.logger.warn(`${this.o.prefix}: ${r.rel}: upstream failed (${fresh.message}); serving a copy ${Math.round((now - have.mtimeMs) / 1000)}s old`);
      return { ...have, stale: true };
    }
    return fresh;
  }

  /** Fetches, validates and stores rel (one fetch for all concurrent callers). */
  refresh(r: SmallRequest): Promise<SmallAnswer> {
    return this.flights.do(r.rel, async (): Promise<SmallAnswer> => {
      try {
        const res = await r.fetch();
        if (!res.ok) {
          this.rememberNotFound(r.rel, res.status, res.message);
          return { kind: "notfound", status: res.status, message: res.message };
        }
        const data = await readAll(res.body, MAX_SMALL);
        this.m("bytes_fetched", data.length);
        r.validate?.(data);
        this.notFound.delete(r.rel);
        if (r.persist) {
          await this.o.store.write(r.rel, data);
          const st = await this.o.store.stat(r.rel);
          if (st) {
            r.onStored?.(r.rel, st.path);
            return { kind: "file", path: st.path, size: st.size, mtimeMs: st.mtimeMs, stale: false, hit: false };
          }
          return { kind: "data", data, mtimeMs: Date.now(), stale: false, hit: false };
        }
        if (this.mem.size > 10_000) this.mem.clear();
        this.mem.set(r.rel, { data, at: Date.now() });
        return { kind: "data", data, mtimeMs: Date.now(), stale: false, hit: false };
      } catch (err) {
        if (err instanceof ValidationError) {
          this.m("refused");
          this.o.logger.warn(`${this.o.prefix}: ${r.rel}: refused: ${err.message}`);
          return { kind: "error", status: 502, message: `refused upstream answer: ${err.message}` };
        }
        this.m("upstream_errors");
        const status = err instanceof UpstreamError ? err.status : 502;
        return { kind: "error", status, message: (err as Error).message };
      }
    }).promise;
  }
}
