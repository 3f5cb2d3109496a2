// The bounded most-requested counter behind the status page's "most
// requested modules": exact while it has room, and for any stream the
// Space-Saving guarantees (every key counted more than total/capacity times
// is kept; a kept key's true count lies in [count - error, count]).
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { TopN } from "../../src/util/top-n.ts";

describe("TopN", () => {
  test("exact counts, most first, ties by key, while every key fits", () => {
    const t = new TopN(10);
    for (const k of ["b", "a", "c", "a", "b", "a"]) t.add(k);
    expect(t.top()).toEqual([
      { key: "a", count: 3, error: 0 },
      { key: "b", count: 2, error: 0 },
      { key: "c", count: 1, error: 0 },
    ]);
    expect(t.top(1).map((e) => e.key)).toEqual(["a"]);
  });

  test("never tracks more than its capacity; a new key replaces the least counted and inherits its count as error", () => {
    const t = new TopN(2);
    t.add("hot", 5);
    t.add("warm", 2);
    t.add("new");
    expect(t.size).toBe(2);
    expect(t.top()).toEqual([
      { key: "hot", count: 5, error: 0 },
      { key: "new", count: 3, error: 2 },
    ]);
  });

  test("Space-Saving bounds hold for any stream", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 400 }), (capacity, stream) => {
        const t = new TopN(capacity);
        const truth = new Map<string, number>();
        for (const n of stream) {
          const k = `m${n}`;
          t.add(k);
          truth.set(k, (truth.get(k) ?? 0) + 1);
        }
        const kept = new Map(t.top().map((e) => [e.key, e]));
        expect(kept.size).toBeLessThanOrEqual(capacity);
        for (const [k, e] of kept) {
          const real = truth.get(k)!;
          expect(real).toBeLessThanOrEqual(e.count);
          expect(real).toBeGreaterThanOrEqual(e.count - e.error);
        }
        for (const [k, n] of truth) if (n > stream.length / capacity) expect(kept.has(k)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  test("a capacity below 1 is refused", () => {
    expect(() => new TopN(0)).toThrow(/capacity/);
  });
});
