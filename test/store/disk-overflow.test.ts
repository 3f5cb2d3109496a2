// The overflow directory's sweep (src/store/disk-overflow.ts): which files
// go and which stay, by age and by whether their writer is still running.
// Files are made here by hand, with their mtimes set; the writes that land
// in the directory for real are in test/e2e/disk-full.test.ts.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sweepOverflow } from "../../src/store/disk-overflow.ts";
import { createDiskStore } from "../../src/store/disk.ts";
import { tempDir } from "../helpers/env.ts";

const tmp = tempDir("gostash-overflow-test-");
afterAll(() => tmp.cleanup());

const HOUR = 3600_000;
const id = (n: number) => n.toString(16).padStart(64, "0");

/** A pid that no process has: one that just exited. */
async function gonePid(): Promise<number> {
  const p = Bun.spawn(["true"]);
  await p.exited;
  return p.pid;
}

function file(dir: string, name: string, ageMs: number, now: number): string {
  const path = join(dir, name);
  writeFileSync(path, "x");
  const t = new Date(now - ageMs);
  utimesSync(path, t, t);
  return name;
}

describe("overflow sweep", () => {
  test("a gone writer's files go after an hour, a running one's after a day; old-layout names after a day", async () => {
    const dir = join(tmp.path, "sweep");
    mkdirSync(dir);
    const now = Date.now();
    const gone = await gonePid();
    const running = process.ppid; // the test runner's parent: alive
    const me = process.pid;
    const removed = [
      file(dir, `${id(1)}-d.${gone}.0.1`, 2 * HOUR, now),
      file(dir, `${id(2)}-d.${running}.0.1`, 25 * HOUR, now),
      file(dir, `${id(3)}-d.${me}.1.7`, 25 * HOUR, now),
      file(dir, `${id(4)}-d`, 25 * HOUR, now),
      file(dir, `${id(5)}-d.${gone}.3.1.tmp`, 25 * HOUR, now),
    ];
    const kept = [
      // go list -export's caller may still open it
      file(dir, `${id(6)}-d.${gone}.0.2`, HOUR / 2, now),
      // its go command may still be running
      file(dir, `${id(7)}-d.${running}.0.2`, 2 * HOUR, now),
      file(dir, `${id(8)}-d.${me}.0.2`, 2 * HOUR, now),
      file(dir, `${id(9)}-d`, 2 * HOUR, now),
    ];
    expect(sweepOverflow(dir, now)).toBe(removed.length);
    expect(readdirSync(dir).sort()).toEqual(kept.sort());
    expect(sweepOverflow(join(tmp.path, "no-such-dir"), now)).toBe(0);
  });

  test("the store's trim sweeps its overflow directory when the trim is due", async () => {
    const dir = join(tmp.path, "cache");
    const overflowDir = join(tmp.path, "overflow");
    mkdirSync(dir);
    mkdirSync(overflowDir);
    const now = Date.now();
    const gone = await gonePid();
    const s = createDiskStore({ dir, overflowDir });
    file(overflowDir, `${id(1)}-d.${gone}.0.1`, 2 * HOUR, now);
    expect(s.trim().skipped).toBe(false);
    expect(readdirSync(overflowDir)).toEqual([]);
    // Not due again today: the sweep waits for the next trim.
    file(overflowDir, `${id(2)}-d.${gone}.0.1`, 2 * HOUR, now);
    expect(s.trim().skipped).toBe(true);
    expect(readdirSync(overflowDir).length).toBe(1);
    s.trim({ force: true });
    expect(readdirSync(overflowDir)).toEqual([]);
  });
});
