// The most frequent keys of an endless stream in bounded memory: the
// Space-Saving algorithm (Metwally, Agrawal, El Abbadi, 2005). At most
// `capacity` keys are tracked; a new key, when all slots are taken, replaces
// the least counted one and inherits its count (as `error`, the most it can
// be over-counted by). Any key counted more than total/capacity times is
// guaranteed to be tracked, and a key counted since it was first tracked
// (error 0) has an exact count. The status page uses it for "most
// requested modules": the module proxy may see millions of paths, the page
// wants the few hot ones.

export interface TopEntry {
  key: string;
  /** Times counted (an upper bound when error > 0). */
  count: number;
  /** How much of count may belong to the keys it replaced (0: exact). */
  error: number;
}

export class TopN {
  private readonly slots = new Map<string, { count: number; error: number }>();

  constructor(private readonly capacity: number) {
    if (!(capacity >= 1)) throw new Error(`TopN: capacity must be at least 1, got ${capacity}`);
  }

  add(key: string, n = 1): void {
    const slot = this.slots.get(key);
    if (slot) {
      slot.count += n;
      return;
    }
    if (this.slots.size < this.capacity) {
      this.slots.set(key, { count: n, error: 0 });
      return;
    }
    // O(capacity) to find the least counted: capacity is small (about 100)
    // and this runs only for keys not tracked yet.
    let minKey = "";
    let min = Infinity;
    for (const [k, s] of this.slots) {
      if (s.count < min) {
        min = s.count;
        minKey = k;
      }
    }
    this.slots.delete(minKey);
    this.slots.set(key, { count: min + n, error: min });
  }

  /** The `limit` most counted keys, most first (ties by key, for a stable order). */
  top(limit = this.capacity): TopEntry[] {
    return [...this.slots]
      .map(([key, s]) => ({ key, count: s.count, error: s.error }))
      .sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .slice(0, limit);
  }

  get size(): number {
    return this.slots.size;
  }
}
