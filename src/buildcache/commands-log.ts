// What each go command did with the daemon's build cache, for the status
// page's "go commands served": one small record per daemon connection
// (= one go command), from its handler's creation to its close(), kept for
// the commands running now and the last RECENT_COMMANDS that finished.
//
// A record is made on the command's first request: a connection that asks
// nothing (a probe, a refused client, the serve's template handler) is not
// a command worth listing.
//
// A record opens with the connection's first request and ends with its
// close; what it counts comes from the CostTracker's events for that
// connection (command-counts.ts, as `gostash ci summary` counts).

import type { CacheHandler } from "../cacheprog/session.ts";
import { countEvent, zeroCounts, type CommandCounts } from "./command-counts.ts";
import type { CacheEvent } from "./costs.ts";

export const RECENT_COMMANDS = 50;

export interface CommandRecord extends CommandCounts {
  /** The daemon's connection number. */
  id: number;
  access: "rw" | "ro";
  /** The go command's line ("go test ./..."), when its bridge said it (daemon/hello.ts). */
  command: string | null;
  /** When the connection's conversation started (ms since the epoch). */
  startedAt: number;
  /** When its close() came; null while it runs. */
  endedAt: number | null;
  /** Build time its hits were spared (savedMs in seconds); absent until a hit with a recorded cost. */
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

  /** `handler`, with one go command's record in this log from its first request to its close. */
  track(access: "rw" | "ro", connID: number, command: string | null, handler: CacheHandler): CacheHandler {
    const startedAt = this.now();
    let rec: CommandRecord | null = null;
    const open = () => {
      if (rec) return;
      rec = { id: connID, access, command, startedAt, endedAt: null, ...zeroCounts() };
      this.running.set(connID, rec);
    };
    return {
      readMayBlock: () => handler.readMayBlock?.() ?? false,
      get: (actionID) => (open(), handler.get(actionID)),
      put: (actionID, outputID, size) => (open(), handler.put(actionID, outputID, size)),
      close: () => {
        if (rec) this.finish(rec);
        return handler.close();
      },
    };
  }

  /** Counts an event of a running command (CostTracker.listen). */
  count(e: CacheEvent): void {
    const rec = e.conn === undefined ? undefined : this.running.get(e.conn);
    if (rec) countEvent(rec, e);
  }

  /** Running commands (newest first), then finished ones (newest first). */
  recent(): CommandRecord[] {
    const byStart = (a: CommandRecord, b: CommandRecord) => b.startedAt - a.startedAt || b.id - a.id;
    return [...[...this.running.values()].sort(byStart), ...this.finished.slice().reverse()].map(withTimeSaved);
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

/** A copy for the page, with the time saved in seconds once a hit had a recorded cost. */
function withTimeSaved(r: CommandRecord): CommandRecord {
  return r.savedMs > 0 ? { ...r, timeSavedSeconds: r.savedMs / 1000 } : { ...r };
}
