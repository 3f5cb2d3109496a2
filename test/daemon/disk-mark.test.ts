// The disk mark (src/daemon/disk-mark.ts): how connect knows it sees the
// daemon's cache directory before answering hits from it.
import { afterAll, expect, test } from "bun:test";
import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { MARK_FILE, seesDisk, writeDiskMark } from "../../src/daemon/disk-mark.ts";
import { tempDir } from "../helpers/env.ts";

const tmp = tempDir("gostash-disk-mark-");
afterAll(() => tmp.cleanup());

test("a fresh random mark, offered with the absolute directory; seen only while it is the latest mark there", () => {
  const first = writeDiskMark(relative(process.cwd(), tmp.path));
  expect(first.dir).toBe(tmp.path);
  expect(first.mark).toMatch(/^[0-9a-f]{32}$/);
  expect(readFileSync(join(tmp.path, MARK_FILE), "latin1")).toBe(`${first.mark}\n`);
  expect(readdirSync(tmp.path)).toEqual([MARK_FILE]); // no temp file left
  expect(seesDisk(first)).toBe(true);
  expect(seesDisk({ ...first, mark: "0".repeat(32) })).toBe(false);
  expect(seesDisk({ ...first, dir: join(tmp.path, "elsewhere") })).toBe(false);

  // A second daemon on the same directory: the first one's bridges stop answering locally.
  const second = writeDiskMark(tmp.path);
  expect(second.mark).not.toBe(first.mark);
  expect(seesDisk(first)).toBe(false);
  expect(seesDisk(second)).toBe(true);
});

test("a directory the daemon cannot write: writeDiskMark throws (serve then offers no disk)", () => {
  expect(() => writeDiskMark(join(tmp.path, "missing", "dir"))).toThrow();
});
