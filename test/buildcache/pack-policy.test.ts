// What a command's pack upload holds (src/buildcache/pack-policy.ts).
import { describe, expect, test } from "bun:test";
import { MAX_CHAIN_PACKS, nextMisses, planPack } from "../../src/buildcache/pack-policy.ts";
import { MAX_HEAD_MISSES, type PackHead, type PackRef } from "../../src/store/packs.ts";

const id = (n: number) => n.toString(16).padStart(64, "0");
const ids = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => id(from + i));

function pack(name: number, actions: string[]): PackRef {
  const meta = { outputID: id(0), size: 1, timeNanos: 1n, encoding: "identity" as const };
  const frames = [{ offset: 0, length: actions.length, rawLength: actions.length, zstd: false }];
  return { name: id(name), bytes: actions.length, writtenMs: 1, frames, entries: actions.map((a, i) => ({ actionID: a, frame: 0, offset: i, meta, raw: {} })) };
}

const head = (...packs: PackRef[]): PackHead => ({ key: id(1), writtenMs: 1, packs, misses: [] });

describe("pack plan", () => {
  test("nothing when every used action is packed", () => {
    expect(planPack(head(pack(1, ids(0, 10))), ids(0, 10), new Set())).toEqual({ kind: "nothing" });
  });

  test("no head: everything, as a delta onto nothing", () => {
    expect(planPack(null, ids(0, 3), new Set())).toEqual({ kind: "delta", ids: ids(0, 3), keep: [] });
  });

  test("a delta holds only the unpacked actions, in use order", () => {
    const p = pack(1, ids(0, 10));
    const used = [id(12), ...ids(0, 10), id(11)];
    expect(planPack(head(p), used, new Set())).toEqual({ kind: "delta", ids: [id(12), id(11)], keep: [p] });
  });

  test("a broken pack counts as absent and leaves the head", () => {
    const good = pack(1, ids(0, 5));
    const bad = pack(2, ids(5, 10));
    expect(planPack(head(good, bad), ids(0, 10), new Set([id(2)]))).toEqual({ kind: "delta", ids: ids(5, 10), keep: [good] });
  });

  test(`past ${MAX_CHAIN_PACKS} packs: compaction by a command that used most of the head, else nothing`, () => {
    const packs = Array.from({ length: MAX_CHAIN_PACKS }, (_, i) => pack(i + 1, ids(i * 10, i * 10 + 10)));
    const h = head(...packs);
    const big = [...ids(0, 60), id(1000)];
    expect(planPack(h, big, new Set())).toEqual({ kind: "compact", ids: big, dropped: MAX_CHAIN_PACKS });
    expect(planPack(h, [id(0), id(1000)], new Set())).toEqual({ kind: "skip", missing: 1 });
  });
});

describe("known misses of the next head", () => {
  const old: PackHead = { ...head(pack(1, ids(0, 5))), misses: [id(900), id(901), id(2)] };

  test("a delta keeps the old head's after the command's own; a compaction only the command's", () => {
    expect(nextMisses("delta", [id(800)], old, [pack(1, ids(0, 5)), pack(3, ids(5, 6))])).toEqual([id(800), id(900), id(901)]);
    expect(nextMisses("compact", [id(800)], old, [pack(3, ids(0, 6))])).toEqual([id(800)]);
    expect(nextMisses("delta", [], null, [pack(3, ids(0, 6))])).toEqual([]);
  });

  test("an action some pack of the new head holds is never a miss (id 2 above, packed since); no duplicates", () => {
    expect(nextMisses("delta", [id(5), id(7), id(7)], old, [pack(1, ids(0, 6))])).toEqual([id(7), id(900), id(901)]);
  });

  test(`at most ${MAX_HEAD_MISSES}, the command's first`, () => {
    const many = ids(10_000, 10_000 + MAX_HEAD_MISSES + 5);
    const next = nextMisses("delta", many, old, []);
    expect(next.length).toBe(MAX_HEAD_MISSES);
    expect(next[0]).toBe(many[0]);
    expect(next).not.toContain(id(900));
  });
});
