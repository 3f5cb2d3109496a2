// One piece of work per key at a time: concurrent callers for the same key
// share the first caller's promise instead of starting the work again (one
// S3 download per action, one upstream fetch per module file). The key is
// forgotten as soon as the work settles, so a later call starts afresh.

export class SingleFlight<T> {
  private readonly inflight = new Map<string, Promise<T>>();

  /** Runs fn once per key at a time; concurrent callers share its result. */
  do(key: string, fn: () => Promise<T>): { promise: Promise<T>; shared: boolean } {
    const existing = this.inflight.get(key);
    if (existing) return { promise: existing, shared: true };
    const p = fn().finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return { promise: p, shared: false };
  }

  /** Is work for this key under way? */
  has(key: string): boolean {
    return this.inflight.has(key);
  }

  get size(): number {
    return this.inflight.size;
  }
}
