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

/**
 * A temporary directory removed when this test process ends, however it
 * ends. bun test runs no "exit" handlers and kills the children a test
 * leaves behind, so a watcher in its own session (setsid) polls for our pid
 * and removes the directory after it is gone. The release is ~1.2 GB.
 */
export function processTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const watch = `while kill -0 ${process.pid} 2>/dev/null; do sleep 2; done; rm -rf '${dir}'`;
  const p = Bun.spawnSync(["setsid", "-f", "sh", "-c", watch], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  if (p.exitCode !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error("test/dist: setsid is needed to clean up temporary directories (util-linux)");
  }
  return dir;
}

export function testRelease(): Promise<Release> {
  if (!pending) {
    const dir = processTempDir("gostash-dist-");
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
