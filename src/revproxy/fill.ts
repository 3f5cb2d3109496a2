// Filling the cache for a URL that is neither in memory nor on the local
// disk: one fill per URL at a time, shared by every request that asks
// while it runs (so 50 clients asking at once cost one origin fetch).
//
//   0. memory and the local disk once more: a fill that ended while this
//      request looked (it commits before it is forgotten) left it there
//      (if its Vary'd request headers match this request's, vary.ts);
//   1. the bucket, if there is one: a verified entry lands on the local
//      disk and everyone is served from there ("hit, remote");
//   2. else the origin, asked for the plain body (origin.ts). Its answer
//      decides (policy.ts):
//        disk/memory  the body is spooled to the entry's temp file and
//                     streamed to every waiting client as it arrives
//                     (spool.ts); late joiners attach until it is over.
//                     Then disk: committed, uploaded to the bucket in the
//                     background; memory: kept in memory, file removed.
//                     A joiner whose Vary'd request headers differ from
//                     the leader's does not take it (handler.ts).
//        none         the first request takes the answer as it is; the
//                     others fetch on their own (an uncacheable answer is
//                     never shared between clients).
//        error        every waiting request gets 502 (504 on a timeout).
//
// A fill is forgotten when its outcome is known, except a spooling one,
// which stays joinable until its download is over and kept (or dropped).

import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import type { BucketEntries } from "./bucket-entries.ts";
import { EntryWriter, type EntryMeta } from "./entry-file.ts";
import type { LocalEntries, LocalHit } from "./local-entries.ts";
import type { MemoryCache, MemoryEntry } from "./memory-cache.ts";
import { fetchOrigin, OriginError } from "./origin.ts";
import { decideStorage, type Decision } from "./policy.ts";
import { Spool } from "./spool.ts";
import { varyingValues, varyMatches } from "./vary.ts";

export type FillOutcome =
  /** Kept by a fill that ended just before this one began. */
  | { kind: "memory"; entry: MemoryEntry }
  | { kind: "local"; hit: LocalHit }
  | { kind: "remote"; hit: LocalHit }
  | { kind: "spool"; spool: Spool; headers: [string, string][]; varying: [string, string][]; storage: "disk" | "memory"; settled: Promise<void> }
  | { kind: "direct"; take(): Response | null }
  | { kind: "failed"; status: number; message: string };

export interface FillDeps {
  local: LocalEntries;
  bucket: BucketEntries | null;
  memory: MemoryCache;
  metrics: Metrics;
  logger: Logger;
  timeoutMs: number;
  /** Largest body kept on disk (0: no limit). */
  maxEntryBytes: number;
}

/** Response headers kept with an entry: the ones that describe the body. */
const KEPT_HEADERS = ["content-type", "content-encoding", "content-disposition", "content-language", "etag", "last-modified", "cache-control", "expires", "date", "vary"];

export function keptHeaders(h: Headers): [string, string][] {
  const out: [string, string][] = [];
  for (const name of KEPT_HEADERS) {
    const v = h.get(name);
    if (v !== null) out.push([name, v]);
  }
  return out;
}

export class Fills {
  private readonly inflight = new Map<string, Promise<FillOutcome>>();

  constructor(private readonly d: FillDeps) {}

  get size(): number {
    return this.inflight.size;
  }

  /** The outcome for this URL's key, starting a fill unless one is under way. */
  join(key: string, url: URL, req: Request): { outcome: Promise<FillOutcome>; leader: boolean } {
    const running = this.inflight.get(key);
    if (running) return { outcome: running, leader: false };
    const outcome = this.fill(key, url, req).catch((err): FillOutcome => ({ kind: "failed", status: 502, message: `revproxy: ${(err as Error)?.message ?? err}` }));
    this.inflight.set(key, outcome);
    void outcome.then((o) => {
      if (o.kind === "spool") void o.settled.then(() => this.forget(key, outcome));
      else this.forget(key, outcome);
    });
    return { outcome, leader: true };
  }

  private forget(key: string, outcome: Promise<FillOutcome>): void {
    if (this.inflight.get(key) === outcome) this.inflight.delete(key);
  }

  private async fill(key: string, url: URL, req: Request): Promise<FillOutcome> {
    const { metrics } = this.d;
    const entry = this.d.memory.get(key);
    if (entry && varyMatches(entry.headers, entry.varying, req)) return { kind: "memory", entry };
    const local = await this.d.local.lookup(key);
    if (local && varyMatches(local.meta.headers, local.meta.varying, req)) return { kind: "local", hit: local };
    if (this.d.bucket && !local) {
      const hit = await this.d.bucket.land(key, this.d.local);
      if (hit && varyMatches(hit.meta.headers, hit.meta.varying, req)) return { kind: "remote", hit };
      metrics.inc("revproxy_remote_misses");
    }
    metrics.inc("revproxy_fetches");
    let res: Response;
    try {
      res = await fetchOrigin({ url, req, forCache: true, timeoutMs: this.d.timeoutMs });
    } catch (err) {
      metrics.inc("revproxy_fetch_errors");
      const e = err as OriginError;
      return { kind: "failed", status: e.kind === "timeout" ? 504 : 502, message: e.message };
    }
    const decision = decideStorage(res.status, res.headers, req.headers.has("authorization"));
    const length = res.headers.has("content-length") ? Number(res.headers.get("content-length")) : null;
    if (!res.body || !this.fits(decision, length)) return takeOnce(res);
    return this.spool(key, url, res, decision, length, varyingValues(res.headers.get("vary"), req));
  }

  /** Can a body of this announced length be kept where the decision says? */
  private fits(decision: Decision, length: number | null): boolean {
    if (decision.storage === "none") return false;
    const limit = decision.storage === "memory" ? this.d.memory.maxEntryBytes : this.d.maxEntryBytes;
    return length === null || limit <= 0 || length <= limit;
  }

  private async spool(key: string, url: URL, res: Response, decision: Decision, length: number | null, varying: [string, string][]): Promise<FillOutcome> {
    const headers = keptHeaders(res.headers);
    const opened = await this.openSpool(key, { url: url.href, status: 200, headers, storedAt: Date.now(), ...(varying.length ? { varying } : {}) }, length);
    // Fail open: a local disk that cannot take the entry (full, read-only) costs the caching, never the answer.
    if (!opened) return takeOnce(res);
    const { writer, spool } = opened;
    const storage = decision.storage as "disk" | "memory";
    const limit = storage === "memory" ? this.d.memory.maxEntryBytes : this.d.maxEntryBytes;
    // Joinable until settled: kept on disk or in memory by then, so a later request finds it there.
    const settled = spool
      .run(res.body as unknown as AsyncIterable<Uint8Array>, limit, (n) => this.d.metrics.inc("revproxy_bytes_fetched", n))
      .then(() => this.settle(key, writer, spool, storage, decision.ttlMs, headers, varying))
      .finally(() => spool.retire());
    return { kind: "spool", spool, headers, varying, storage, settled };
  }

  /** The entry's temp file and its spool; null (counted, logged) when the local disk refuses them. */
  private async openSpool(key: string, meta: EntryMeta, length: number | null): Promise<{ writer: EntryWriter; spool: Spool } | null> {
    let writer: EntryWriter | null = null;
    try {
      writer = await EntryWriter.create(this.d.local.tempFor(key), meta);
      return { writer, spool: new Spool(writer, length) };
    } catch (err) {
      await writer?.close();
      if (writer) this.d.local.discard(writer.tmp);
      this.d.metrics.inc("revproxy_store_errors");
      this.d.logger.warn(`revproxy: cannot store ${meta.url} on the local disk: ${(err as Error)?.message ?? err}; served without storing`);
      return null;
    }
  }

  /** After a spooled download: keep it where it belongs, or drop it. */
  private async settle(key: string, writer: EntryWriter, spool: Spool, storage: "disk" | "memory", ttlMs: number, headers: [string, string][], varying: [string, string][]): Promise<void> {
    const { local, metrics, logger } = this.d;
    const tmp = writer.tmp;
    try {
      if (spool.state !== "done" || spool.overLimit || !spool.head) {
        if (spool.state === "failed") {
          metrics.inc("revproxy_fetch_errors");
          logger.warn(`revproxy: ${spool.error?.message ?? "download failed"}; not cached`);
        } else metrics.inc("revproxy_not_cached");
        return;
      }
      if (storage === "memory") {
        const body = await Bun.file(tmp).slice(writer.bodyStart, writer.bodyStart + spool.head.size).bytes();
        if (this.d.memory.set(key, { body, headers, varying, expiresAt: Date.now() + ttlMs })) metrics.inc("revproxy_stored_memory");
        return;
      }
      const path = await local.commit(tmp, key, spool.head);
      metrics.inc("revproxy_stored");
      metrics.inc("revproxy_bytes_stored", spool.head.size);
      this.d.bucket?.upload(key, path, Bun.file(path).size);
    } catch (err) {
      logger.warn(`revproxy: keeping ${key}: ${(err as Error)?.message ?? err}`);
    } finally {
      local.discard(tmp);
    }
  }
}

/** An answer that is not shared: the first request gets it, later ones fetch their own. */
function takeOnce(res: Response): FillOutcome {
  let taken = false;
  return {
    kind: "direct",
    take() {
      if (taken) return null;
      taken = true;
      return res;
    },
  };
}
