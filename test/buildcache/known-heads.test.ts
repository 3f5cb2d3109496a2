// KnownHeads (buildcache/pack-heads.ts): the heads a machine trusts without
// asking the bucket, in memory and as copies on disk (store/head-copies.ts),
// for an hour after they were seen. A clock of its own; real files.
import { expect, test } from "bun:test";
import { existsSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KNOWN_HEAD_TTL_MS, KnownHeads } from "../../src/buildcache/pack-heads.ts";
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
