// The cause of S3 trouble, at the default log level (issue #15, item 4):
// the real binary as GOCACHEPROG for the real go command, a real S3 server
// (versitygw) and a bucket name S3 refuses. The first failure is logged
// once with its HTTP status, the S3 error code and a hint about bucket
// names; later ones are only counted; the build succeeds from the local
// cache.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { BIN, tempDir } from "../helpers/env.ts";
import { go, goEnv, writeDemoModule } from "../helpers/go.ts";
import { startS3Server, type S3Server } from "../helpers/s3server.ts";

const tmp = tempDir("gostash-s3-first-failure-");
let s3: S3Server;

beforeAll(async () => {
  s3 = await startS3Server();
  writeDemoModule(join(tmp.path, "demo"));
}, 120_000);

afterAll(async () => {
  await s3?.stop();
  tmp.cleanup();
});

const BAD = "Bad_Bucket";

for (const [what, flags] of [
  ["default level", ""],
  ["-v", " -v"],
] as const) {
  test(`an invalid bucket name at the ${what}: one line with HTTP 400, InvalidBucketName and the naming rules; the build succeeds`, async () => {
    const dir = join(tmp.path, what.replace(/\W/g, ""));
    const prog = `${BIN} --cache-dir=${join(dir, "cache")} --bucket=${BAD} --metrics${flags}`;
    const env = goEnv({
      gocache: join(dir, "gocache"),
      home: join(dir, "home"),
      prog,
      extra: { ...s3.env, GOCACHE_S3_BUCKET: "" },
    });
    const r = await go(["build", "./..."], join(tmp.path, "demo"), env, 300_000);
    expect(r.code, r.stderr).toBe(0);
    // One warning (the level shown by default); -v adds each later failure as a debug line.
    const first = r.stderr.split("\n").filter((l) => l.includes("InvalidBucketName") && !l.startsWith("gostash: debug:"));
    expect(first).toHaveLength(1);
    expect(first[0]).toStartWith("gostash: warn: s3: ");
    expect(first[0]).toContain("400");
    expect(first[0]).toContain(`bucket names are 3-63 characters of lowercase letters, digits, dots and hyphens; got "${BAD}"`);
    expect(first[0]).toContain("later S3 failures are counted in s3_errors");
    // The summary counts the rest; a refusal (4xx) never trips the breaker.
    const errors = Number(/gostash: s3: requests \d+, .*object gets \d+, .*errors (\d+)/.exec(r.stderr)?.[1]);
    expect(errors).toBeGreaterThan(1);
    expect(r.stderr).toContain("breaker trips 0");
    expect(r.stderr).not.toContain("failures in a row");
  }, 400_000);
}
