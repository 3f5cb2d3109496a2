// Short-lived answers (max-age under an hour) kept in memory, as
// go-cache-plugin does, bounded by bytes (--revproxy-memory) and evicted
// least recently used first. One entry may take at most an eighth of the
// budget, so a single large answer never flushes everything else. Entries
// are dropped once they are as old as their max-age said.

export interface MemoryEntry {
  body: Uint8Array;
  headers: [string, string][];
  /** The request's values of the headers the answer varies on (vary.ts). */
  varying?: [string, string][];
  /** Date.now() after which it is stale. */
  expiresAt: number;
}

export class MemoryCache {
  /** Map iteration order is insertion order: the first key is the least recently used. */
  private readonly entries = new Map<string, MemoryEntry>();
  private used = 0;

  constructor(readonly capacityBytes: number) {}

  get maxEntryBytes(): number {
    return Math.floor(this.capacityBytes / 8);
  }

  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string, now = Date.now()): MemoryEntry | null {
    const e = this.entries.get(key);
    if (!e) return null;
    this.entries.delete(key);
    if (e.expiresAt <= now) {
      this.used -= e.body.length;
      return null;
    }
    this.entries.set(key, e);
    return e;
  }

  /** Keeps an entry if it fits; false when it is too large. */
  set(key: string, entry: MemoryEntry): boolean {
    if (entry.body.length > this.maxEntryBytes) return false;
    this.delete(key);
    this.entries.set(key, entry);
    this.used += entry.body.length;
    this.evict();
    return true;
  }

  delete(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.used -= e.body.length;
  }

  /** Least recently used first, until the budget holds. */
  private evict(): void {
    for (const [key, e] of this.entries) {
      if (this.used <= this.capacityBytes) return;
      this.entries.delete(key);
      this.used -= e.body.length;
    }
  }
}
