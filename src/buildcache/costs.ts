// Time saved: a decorator around any CacheHandler that measures what each
// action cost to compute and adds it up on every later hit.
//
// The measure: the go command asks for an action (get), misses, computes it
// (compiles, links, runs the test, vets) and stores the result (put). The
// interval from the miss to the put of the same action ID is that action's
// cost. It is recorded in the cost book (store/costs.ts) just before the put
// is committed, so the bucket object uploaded for that put carries it too
// (tiered.ts reads it for the object's metadata; a remote hit records the
// cost that came with the object). On each hit, the recorded cost is added
// to `time_saved_seconds`.
//
// What this overstates or understates (docs/ci.md says it for users):
// - it is compute time, summed over the go command's parallel workers: with
//   -p 4 four actions can be saved in the same second of wall time;
// - the interval includes waiting (for a CPU, the disk, the actions' own
//   I/O) on the machine where the miss happened, loaded or not;
// - a hit on an action the go command would not have run anyway (it only
//   wanted to know) counts in full;
// - hits on entries with no recorded cost (made before gostash measured, by
//   plain go, or whose record was lost) count nothing: uncosted_hits.
// A miss older than MAX_COST_MS is not taken as the start of a put's
// interval (a go command that missed, gave up, and another that put much
// later would look like one very slow action).
//
// Every get, put and cost also goes to the listeners as a CacheEvent: the
// per-command records of `gostash ci summary` (src/ci/) are built from them.

import type { CacheHandler, PutWriter } from "../cacheprog/session.ts";
import type { Hit } from "../cacheprog/protocol.ts";
import type { CostBook } from "../store/costs.ts";
import type { Metrics } from "../util/metrics.ts";

/** Longer than this from miss to put is not one action's cost. */
export const MAX_COST_MS = 3600_000;
/** Misses remembered while waiting for their put (oldest forgotten first). */
const MAX_PENDING_MISSES = 100_000;

/** `conn`: the daemon connection (one go command) it came through; absent in plugin mode. */
export type CacheEvent = { conn?: number } & (
  | { kind: "hit"; actionID: string; size: number; costMs: number | undefined; remote: boolean }
  | { kind: "miss"; actionID: string }
  | { kind: "put"; actionID: string; size: number; costMs: number | undefined; diskPath: string }
);

export interface WrapOptions {
  /** The daemon connection this handler serves; its events carry it. */
  conn?: number;
  /** Record the miss-to-put costs of its puts (not for read-only clients, whose puts are never shared). */
  recordCosts?: boolean;
}

export type CacheListener = (e: CacheEvent) => void;

export class CostTracker {
  /** Action ID -> when (performance.now ms) its latest miss was answered. */
  private readonly missedAt = new Map<string, number>();
  private readonly listeners = new Set<CacheListener>();

  constructor(
    readonly book: CostBook,
    private readonly metrics: Metrics,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Calls fn for every event until the returned function is called. */
  listen(fn: CacheListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * The handler measured: same answers, same readMayBlock, costs
   * recorded and summed. Each handler the go command's requests go through
   * is wrapped once (plugin mode: the cache; the daemon: each connection).
   */
  wrap(inner: CacheHandler, o: WrapOptions = {}): CacheHandler {
    const { conn } = o;
    const record = o.recordCosts !== false;
    return {
      readMayBlock: () => inner.readMayBlock?.() ?? false,
      get: (actionID) => {
        const r = inner.get(actionID);
        if (r instanceof Promise) return r.then((hit) => this.answered(actionID, hit, true, conn));
        return this.answered(actionID, r, false, conn);
      },
      put: (actionID, outputID, size) => this.measuredPut(inner.put(actionID, outputID, size), actionID, size, conn, record),
      close: () => inner.close(),
    };
  }

  /**
   * Counts a get's answer. A hit that had to wait (a promise) came through
   * the shared tier: tiered.ts answers local hits at once.
   */
  private answered<T extends Hit | null>(actionID: string, hit: T, waited: boolean, conn: number | undefined): T {
    if (!hit) {
      this.missedAt.delete(actionID); // re-inserted: the map stays in miss order
      this.missedAt.set(actionID, this.now());
      if (this.missedAt.size > MAX_PENDING_MISSES) this.missedAt.delete(this.missedAt.keys().next().value!);
      this.emit({ kind: "miss", actionID, conn });
      return hit;
    }
    const costMs = this.book.get(actionID);
    if (costMs !== undefined) this.metrics.inc("time_saved_seconds", costMs / 1000);
    else this.metrics.inc("uncosted_hits");
    this.emit({ kind: "hit", actionID, size: hit.size, costMs, remote: waited || hit.from !== undefined, conn });
    return hit;
  }

  private measuredPut(w: PutWriter, actionID: string, size: number, conn: number | undefined, record: boolean): PutWriter {
    return {
      write: (bytes) => w.write(bytes),
      abort: () => w.abort(),
      commit: () => {
        const costMs = record ? this.costOfPut(actionID) : undefined;
        const done = (diskPath: string) => {
          this.emit({ kind: "put", actionID, size, costMs, diskPath, conn });
          return diskPath;
        };
        const p = w.commit();
        return p instanceof Promise ? p.then(done) : done(p);
      },
    };
  }

  /** The miss-to-put interval, recorded before the put commits (the upload reads it). */
  private costOfPut(actionID: string): number | undefined {
    const at = this.missedAt.get(actionID);
    if (at === undefined) return undefined;
    this.missedAt.delete(actionID);
    const ms = Math.max(1, Math.round(this.now() - at));
    if (ms > MAX_COST_MS) return undefined;
    this.book.record(actionID, ms);
    this.metrics.inc("costs_recorded");
    return ms;
  }

  private emit(e: CacheEvent): void {
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch {
        // A listener's bug must never reach the go command's answer.
      }
    }
  }
}
