// The time-saved estimate checked against reality: a module built cold,
// then warm, through gostash on a machine with no bucket; the saving the
// warm run reports is compared with the measured cold-minus-warm wall time.
// (No bucket there: a cold build with one also waits at its end for its
// uploads, time that is no action's cost and that a slow disk under the S3
// server stretches.) Then a machine with the bucket builds it cold and warm,
// and fresh machines (empty local cache, same bucket) build it warm from the
// bucket and report the same saving as its warm run: the costs travelled in
// the pack's entries (and, with --no-prefetch, in the single objects' metadata).
//
// The builds run with -p=1, so the go command computes one action at a time
// and summed action costs are comparable with wall time (with -p=N they add
// up to as much as N times the wall time: the estimate is compute time).
//
// Tolerance: the reported saving must be within 35% of cold-minus-warm.
// Both the costs and the cold wall time are measured in the same cold run,
// so machine load inflates them together; what is left is the go command's
// own work between actions (loading packages, writing outputs, the link),
// a few percent here. A figure off by 2x, or zero, fails.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { join } from "node:path";
import { BIN, tempDir } from "../helpers/env.ts";
import { go, goEnv } from "../helpers/go.ts";
import { startS3Server, type S3Server } from "../helpers/s3server.ts";
import { mkdirSync, writeFileSync } from "node:fs";

const TOLERANCE = 0.35;
const tmp = tempDir("gostash-e2e-time-saved-");
const mod = join(tmp.path, "mod");
let s3: S3Server;

beforeAll(async () => {
  s3 = await startS3Server();
  mkdirSync(join(mod, "cmd", "app"), { recursive: true });
  writeFileSync(join(mod, "go.mod"), "module example.com/timed\n\ngo 1.22\n");
  // fmt and its dependencies (runtime, reflect, strconv, ...) are what a cold build compiles.
  writeFileSync(join(mod, "cmd", "app", "main.go"), 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("timed") }\n');
}, 120_000);

afterAll(async () => {
  await s3?.stop();
  tmp.cleanup();
});

/** The --metrics summary's lines (gets, hits by tier, misses, packs), for a failure to show what the build did. */
function summaryOf(stderr: string): string {
  return stderr
    .split("\n")
    .filter((l) => /^gostash: (gets|puts|time saved|s3|packs)/.test(l))
    .join("\n");
}

/** The --metrics line's estimate, in seconds ("~25.8s", "~1m05s", "~1h02m"). */
function savedSeconds(stderr: string): number {
  const m = /time saved: ~(?:(\d+)h)?(?:(\d+)m)?(?:([\d.]+)s)?/.exec(stderr);
  if (!m) throw new Error(`no time saved line in:\n${stderr}`);
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

/** One build on `machine` (its own cache), with the bucket unless `bucket` is false. */
async function timedBuild(machine: string, flags = "", bucket = true): Promise<{ seconds: number; stderr: string }> {
  const env = goEnv({
    gocache: join(tmp.path, machine, "gocache"),
    prog: `${BIN} --metrics --min-upload-size=0${flags}`,
    home: join(tmp.path, machine, "home"),
    extra: { ...(bucket ? s3.env : {}), GOFLAGS: "-mod=mod -p=1" },
  });
  const t0 = performance.now();
  const r = await go(["build", "-o", join(tmp.path, machine, "app"), "./cmd/app"], mod, env, 600_000);
  const seconds = (performance.now() - t0) / 1000;
  if (r.code !== 0) throw new Error(`go build failed:\n${r.stderr}`);
  return { seconds, stderr: r.stderr };
}

describe("time saved", () => {
  test("the warm build reports about the cold-minus-warm time; fresh machines warm from the bucket (packs, single objects) report the same", async () => {
    const cold = await timedBuild("local", "", false);
    expect(cold.stderr).toMatch(/[1-9]\d* costs recorded/);
    expect(savedSeconds(cold.stderr)).toBe(0);
    const warm = await timedBuild("local", "", false);
    const measured = cold.seconds - warm.seconds;
    const estimate = savedSeconds(warm.stderr);
    console.error(
      `time saved: reported ${estimate.toFixed(1)}s, measured cold ${cold.seconds.toFixed(1)}s - warm ${warm.seconds.toFixed(1)}s = ${measured.toFixed(1)}s\n` +
        `cold:\n${summaryOf(cold.stderr)}\nwarm:\n${summaryOf(warm.stderr)}`,
    );
    expect(warm.stderr).toMatch(/misses [01]\b/);
    expect(estimate).toBeGreaterThan(measured * (1 - TOLERANCE));
    expect(estimate).toBeLessThan(measured * (1 + TOLERANCE));

    // With the bucket: the cold build uploads (objects as it goes, a pack at its end).
    const coldA = await timedBuild("a");
    expect(coldA.stderr).toMatch(/[1-9]\d* costs recorded/);
    const warmA = await timedBuild("a");
    expect(warmA.stderr).toMatch(/misses [01]\b/);
    const reported = savedSeconds(warmA.stderr);
    console.error(`time saved with the bucket: ${reported.toFixed(1)}s\ncold:\n${summaryOf(coldA.stderr)}\nwarm:\n${summaryOf(warmA.stderr)}`);
    expect(reported).toBeGreaterThan(0);

    // Every uploaded object carries its cost (uploads were flushed at close).
    const keys = (await s3.listKeys()).filter((k) => /^[0-9a-f]{2}\/[0-9a-f]{64}$/.test(k));
    expect(keys.length).toBeGreaterThan(20);
    let withCost = 0;
    for (const key of keys) {
      const h = await s3.client().send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
      if (h.Metadata?.["gostash-cost"] && /^\d+$/.test(h.Metadata["gostash-cost"])) withCost++;
    }
    expect(withCost).toBeGreaterThan(keys.length / 3);

    // From the pack the cold build uploaded at its end.
    const fromPack = await timedBuild("b");
    expect(fromPack.stderr).toMatch(/pack [1-9]\d*, remote \d+\)/);
    const savedFromPack = savedSeconds(fromPack.stderr);
    console.error(`time saved on a fresh machine from the pack: ${savedFromPack.toFixed(1)}s\n${summaryOf(fromPack.stderr)}`);
    // Every action a hit: a rebuilt one saves nothing, and would read as lost costs.
    expect(fromPack.stderr).toMatch(/misses [01]\b/);
    expect(savedFromPack).toBeGreaterThan(reported * 0.9);
    expect(savedFromPack).toBeLessThan(reported * 1.1);

    // From single objects, one GET each (no packs read).
    const fromObjects = await timedBuild("c", " --no-prefetch");
    expect(fromObjects.stderr).toMatch(/pack 0, remote [1-9]\d*\)/);
    const savedFromObjects = savedSeconds(fromObjects.stderr);
    console.error(`time saved on a fresh machine from single objects: ${savedFromObjects.toFixed(1)}s\n${summaryOf(fromObjects.stderr)}`);
    expect(fromObjects.stderr).toMatch(/misses [01]\b/);
    expect(savedFromObjects).toBeGreaterThan(reported * 0.9);
    expect(savedFromObjects).toBeLessThan(reported * 1.1);
  }, 900_000);
});
