// scripts/soak.ts, shortened to ~30 s: the compiled daemon under parallel
// go builds, go tests and go mod downloads must pass (every build right, no
// descriptor growth), and its figures must be there and make sense.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { BIN, ROOT, run } from "../helpers/env.ts";

describe("soak script", () => {
  test("30 s with 2 parallel workers: exit 0 and every figure parses", async () => {
    const r = await run([process.execPath, join(ROOT, "scripts", "soak.ts"), "--duration", "30s", "--builds", "2", "--bin", BIN], {
      cwd: ROOT,
      timeoutMs: 540_000,
    });
    const out = r.stdout;
    if (r.code !== 0) throw new Error(`soak failed (exit ${r.code}):\n${out}\n${r.stderr.slice(-3000)}`);
    try {
      checkFigures(out);
    } catch (err) {
      // The figures with the failure: a soak run is too long to repeat blind.
      throw new Error(`${(err as Error).message}\n--- soak output:\n${out}\n--- stderr tail:\n${r.stderr.slice(-3000)}`);
    }
  }, 600_000);
});

function checkFigures(out: string): void {
  const num = (re: RegExp): number[] => {
    const m = re.exec(out);
    if (!m) throw new Error(`no match for ${re} in:\n${out}`);
    return m.slice(1).map(Number);
  };
  const [rounds, builds, tests, downloads, failures] = num(/^soak: rounds (\d+) \(builds (\d+) ok, tests (\d+) ok, mod downloads (\d+) ok\), failures (\d+)$/m);
  expect(rounds).toBeGreaterThanOrEqual(2); // at least one round per worker
  expect([builds, tests, downloads]).toEqual([rounds, rounds, rounds]);
  expect(failures).toBe(0);
  const [plugin, gets, hits, puts, http] = num(/^soak: requests served: plugin (\d+) \(gets (\d+), hits (\d+), puts (\d+)\), http (\d+)$/m);
  expect(plugin).toBe(gets! + puts!);
  expect(gets).toBeGreaterThan(0);
  expect(hits).toBeLessThanOrEqual(gets!);
  expect(puts).toBeGreaterThan(0);
  expect(http).toBeGreaterThan(0);
  expect(num(/^soak: errors: builds (\d+), daemon (\d+)$/m)).toEqual([0, 0]);
  const unit = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 } as Record<string, number>;
  const rss = /^soak: rss peak ([\d.]+) (B|KiB|MiB|GiB), final ([\d.]+) (B|KiB|MiB|GiB)$/m.exec(out);
  expect(rss).not.toBeNull();
  const peak = Number(rss![1]) * unit[rss![2]!]!;
  const final = Number(rss![3]) * unit[rss![4]!]!;
  expect(final).toBeGreaterThan(1 << 20);
  expect(peak).toBeGreaterThanOrEqual(final);
  const [start, warm, fdPeak, end, tolerance] = num(/^soak: fds start (\d+), warm (\d+), peak (\d+), end (\d+) \(tolerance (\d+)\)$/m);
  expect(start).toBeGreaterThan(0);
  expect(fdPeak).toBeGreaterThanOrEqual(Math.max(start!, warm!));
  expect(end! - warm!).toBeLessThanOrEqual(tolerance!);
  expect(out).toMatch(/^soak: PASS$/m);
}
