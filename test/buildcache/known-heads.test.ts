// KnownHeads (buildcache/pack-heads.ts): the heads a machine trusts without
// asking the bucket, in memory and as copies on disk (store/head-copies.ts),
// for an hour after they were seen. A clock of its own; real files.
import { expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KNOWN_HEAD_TTL_MS, KnownHeads } from "../../src/buildcache/pack-heads.ts";
import { sweepHeadCopies } from "../../src/store/head-copies.ts";
import { encodeHead, type PackHead } from "../../src/store/packs.ts";
import { tempDir } from "../helpers/env.ts";

const KEY = "ab".repeat(32);
const head = (writtenMs: number): PackHead => ({ key: KEY, writtenMs, packs: [], misses: [] });

test("in memory: known until an hour after it was seen, then not (the daemon asks the bucket again)", () => {
  let now = 1_000_000;
  const known = new KnownHeads({ now: () => now });
  expect(known.knows(KEY)).toBe(false);
  known.set(KEY, head(1));
  expect(known.knows(KEY)).toBe(true);
  expect(known.get(KEY)?.writtenMs).toBe(1);
  now += KNOWN_HEAD_TTL_MS - 1;
  expect(known.get(KEY)?.writtenMs).toBe(1);
  now += 1;
  expect(known.knows(KEY)).toBe(false);
  expect(known.get(KEY)).toBeUndefined();
});

test("a copy carries a head to the next process of the same directory; its mtime is when it was seen", () => {
  const t = tempDir("gostash-known-heads-");
  try {
    const dir = join(t.path, "heads", "bucket");
    new KnownHeads({ dir }).set(KEY, head(7), encodeHead(head(7)));
    expect(readdirSync(dir)).toEqual([`${KEY}.head`]);
    const next = new KnownHeads({ dir });
    expect(next.knows(KEY)).toBe(true);
    expect(next.get(KEY)?.writtenMs).toBe(7);
    // An hour old: neither known nor read.
    const old = new Date(Date.now() - KNOWN_HEAD_TTL_MS - 60_000);
    utimesSync(join(dir, `${KEY}.head`), old, old);
    const later = new KnownHeads({ dir });
    expect(later.knows(KEY)).toBe(false);
    expect(later.get(KEY)).toBeUndefined();
  } finally {
    t.cleanup();
  }
});

test("a copy that does not decode, or was written for another key, is dropped; a directory that cannot be written only means no copy", () => {
  const t = tempDir("gostash-known-heads-bad-");
  try {
    const dir = join(t.path, "heads");
    new KnownHeads({ dir }).set(KEY, head(1), new Uint8Array([1, 2, 3]));
    const bad = new KnownHeads({ dir });
    expect(bad.knows(KEY)).toBe(true); // a stat says nothing about the bytes
    expect(bad.get(KEY)).toBeUndefined();
    expect(existsSync(join(dir, `${KEY}.head`))).toBe(false);

    const other = "cd".repeat(32);
    new KnownHeads({ dir }).set(KEY, head(1), encodeHead({ ...head(1), key: other }));
    expect(new KnownHeads({ dir }).get(KEY)).toBeUndefined();
    expect(existsSync(join(dir, `${KEY}.head`))).toBe(false);

    const file = join(t.path, "a-file");
    writeFileSync(file, "");
    const unwritable = new KnownHeads({ dir: join(file, "heads") });
    unwritable.set(KEY, head(2), encodeHead(head(2)));
    expect(unwritable.get(KEY)?.writtenMs).toBe(2); // memory still has it
  } finally {
    t.cleanup();
  }
});

test("the daily sweep removes copies and temp files a day old, in every bucket's directory, and keeps younger ones and anything else", () => {
  const t = tempDir("gostash-known-heads-");
  try {
    const packs = join(t.path, "gostash-packs");
    const now = Date.now();
    const file = (bucket: string, name: string, ageMs: number) => {
      const dir = join(packs, "heads", bucket);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, name), "x");
      utimesSync(join(dir, name), new Date(now - ageMs), new Date(now - ageMs));
    };
    const DAY = 24 * 3600_000;
    file("one", `${KEY}.head`, DAY + 60_000);
    file("one", `${"cd".repeat(32)}.head`, DAY - 60_000);
    file("two", `${KEY}.123.4.tmp`, 2 * DAY);
    file("two", "README", 2 * DAY);
    expect(sweepHeadCopies(packs, now)).toBe(2);
    expect(readdirSync(join(packs, "heads", "one"))).toEqual([`${"cd".repeat(32)}.head`]);
    expect(readdirSync(join(packs, "heads", "two"))).toEqual(["README"]);
    expect(sweepHeadCopies(join(t.path, "nothing-here"), now)).toBe(0);
  } finally {
    t.cleanup();
  }
});
