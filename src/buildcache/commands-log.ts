// What each go command did with the daemon's build cache, for the status
// page's "go commands served": one small record per daemon connection
// (= one go command), from its handler's creation to its close(), kept for
// the commands running now and the last RECENT_COMMANDS that finished.
//
// A record is made on the command's first request: a connection that asks
// nothing (a probe, a refused client, the serve's template handler) is not
// a command worth listing.
//
// Which tier answered a hit is read from the hit: tiered.ts marks hits that
// came from the bucket (a pack or a single object) with `from`.

import type { CacheHandler, PutWriter } from "../cacheprog/session.ts";
import type { Hit } from "../cacheprog/protocol.ts";

export const RECENT_COMMANDS = 50;

export interface CommandRecord {
  /** The daemon's connection number. */
  id: number;
  access: "rw" | "ro";
  /** When the connection's conversation started (ms since the epoch). */
  startedAt: number;
  /** When its close() came; null while it runs. */
  endedAt: number | null;
  gets: number;
  /** Hits from what the local disk already held. */
  hitsLocal: number;
  /** Hits that came from the bucket (a pack or a single object). */
  hitsRemote: number;
  misses: number;
  puts: number;
  /** Output bytes served by hits. */
  bytesHit: number;
  /** Output bytes stored by committed puts. */
  bytesPut: number;
  /** Build time its hits were spared (recorded costs of the actions hit); absent until one is known. */
  timeSavedSeconds?: number;
}

export class CommandsLog {
  private readonly running = new Map<number, CommandRecord>();
  /** Finished records, oldest first, at most `keep`. */
  private readonly finished: CommandRecord[] = [];

  constructor(
    private readonly keep = RECENT_COMMANDS,
    private readonly now: () => number = Date.now,
  ) {}

  /** `handler`, counting what one go command asks of it into a record of this log. */
  track(access: "rw" | "ro", connID: number, handler: CacheHandler): CacheHandler {
    const startedAt = this.now();
    let rec: CommandRecord | null = null;
    const record = (): CommandRecord => {
      if (!rec) {
        rec = { id: connID, access, startedAt, endedAt: null, gets: 0, hitsLocal: 0, hitsRemote: 0, misses: 0, puts: 0, bytesHit: 0, bytesPut: 0 };
        this.running.set(connID, rec);
      }
      return rec;
    };
    return {
      ...(handler.synchronous ? { synchronous: true } : {}),
      get: (actionID) => {
        const r = record();
        r.gets++;
        const answer = handler.get(actionID);
        if (!(answer instanceof Promise)) return countHit(r, answer);
        return answer.then((hit) => countHit(r, hit));
      },
      put: (actionID, outputID, size) => {
        const r = record();
        r.puts++;
        return countedPut(handler.put(actionID, outputID, size), () => (r.bytesPut += size));
      },
      close: () => {
        if (rec) this.finish(rec);
        return handler.close();
      },
    };
  }

  /** Adds what a hit of a running command spared (CostTracker's events). */
  addTimeSaved(connID: number, seconds: number): void {
    const rec = this.running.get(connID);
    if (rec) rec.timeSavedSeconds = (rec.timeSavedSeconds ?? 0) + seconds;
  }

  /** Running commands (newest first), then finished ones (newest first). */
  recent(): CommandRecord[] {
    const byStart = (a: CommandRecord, b: CommandRecord) => b.startedAt - a.startedAt || b.id - a.id;
    return [...[...this.running.values()].sort(byStart), ...this.finished.slice().reverse()].map((r) => ({ ...r }));
  }

  /** Commands running now. */
  get open(): number {
    return this.running.size;
  }

  private finish(rec: CommandRecord): void {
    if (rec.endedAt !== null) return;
    rec.endedAt = this.now();
    this.running.delete(rec.id);
    this.finished.push(rec);
    if (this.finished.length > this.keep) this.finished.splice(0, this.finished.length - this.keep);
  }
}

function countHit(r: CommandRecord, hit: Hit | null): Hit | null {
  if (!hit) r.misses++;
  else {
    if (hit.from === undefined) r.hitsLocal++;
    else r.hitsRemote++;
    r.bytesHit += hit.size;
  }
  return hit;
}

/** The put, calling `stored` once its commit succeeded. */
function countedPut(w: PutWriter, stored: () => void): PutWriter {
  return {
    write: (bytes) => w.write(bytes),
    abort: () => w.abort(),
    commit: () => {
      const path = w.commit();
      if (path instanceof Promise) return path.then((p) => (stored(), p));
      stored();
      return path;
    },
  };
}
