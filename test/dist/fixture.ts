// One release build shared by every test file in test/dist (bun test runs
// them in one process): all targets cross-compiled by scripts/release.ts
// into a temporary directory, removed when the process exits. It is the slow
// part (about a minute on 2 cores), so it happens once.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { release, type Release } from "../../scripts/release.ts";

export const TEST_VERSION = "9.9.9-test.1";
/** Generous: cross-compiling 7 targets on a loaded 2-core machine, plus first-time runtime downloads. */
export const BUILD_TIMEOUT_MS = 600_000;

let pending: Promise<Release> | undefined;

export function testRelease(): Promise<Release> {
  if (!pending) {
    const dir = mkdtempSync(join(tmpdir(), "gostash-dist-"));
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    const t0 = performance.now();
    pending = release({
      version: TEST_VERSION,
      outDir: join(dir, "release"),
      stageDir: join(dir, "stage"),
      level: 1, // the archive format is what is tested, not the ratio
      jobs: 1,
      log: () => {},
    }).then((r) => {
      console.error(`test/dist: release of ${r.artifacts.length} targets built in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
      return r;
    });
  }
  return pending;
}
