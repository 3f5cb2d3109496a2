// The bucket's last failure as the status page shows it, fed by the one S3
// client's failure path: a real client against a loopback port nothing
// listens on, and against a small HTTP server that answers like S3 does.
import { afterAll, describe, expect, test } from "bun:test";
import type { S3Config } from "../../src/config/config.ts";
import { createS3Client, type S3Client } from "../../src/s3/client.ts";
import { LastBucketError } from "../../src/s3/last-error.ts";
import { RemoteError } from "../../src/s3/errors.ts";
import type { Logger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { setEnv } from "../helpers/env.ts";
import { freePort } from "../helpers/s3server.ts";

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} } as unknown as Logger;
const clients: S3Client[] = [];
const servers: { stop(force?: boolean): void }[] = [];

// Credentials to sign with (nothing checks them); restored after this file.
const restoreEnv = setEnv({ AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test" });

function client(endpoint: string): S3Client {
  const cfg: S3Config = {
    bucket: "status-bucket", region: "us-east-1", prefix: "", endpoint, pathStyle: true, minUploadSize: 0, uploadConcurrency: 1,
    concurrency: 1, readOnly: false, flushTimeoutMs: 1000, compress: false, timeoutMs: 2000,
  };
  const c = createS3Client(cfg, { logger: quiet, metrics: new Metrics() });
  clients.push(c);
  return c;
}

afterAll(() => {
  restoreEnv();
  for (const c of clients) c.close();
  for (const s of servers) s.stop(true);
});

describe("the S3 client keeps its last failure for the status page", () => {
  test("a refused connection: kind, message, the cause's code, and the hint the log gives", async () => {
    const c = client(`http://127.0.0.1:${freePort()}`);
    expect(c.lastError.value).toBeNull();
    await expect(c.get("ab/missing")).rejects.toBeInstanceOf(RemoteError);
    const e = c.lastError.value!;
    expect(e.kind).toBe("network");
    expect(e.message).toContain("s3: get ab/missing");
    expect(e.cause).toContain("ECONNREFUSED");
    expect(e.hint).toContain("--s3-endpoint-url");
    expect(e.hint).not.toContain("(hint:");
    expect(c.lastError.failingNow).toBe(true);
  });

  test("an S3 error answer keeps its status and code; the next answered request clears 'failing' but keeps the error", async () => {
    let status = 503;
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: () =>
        new Response(`<?xml version="1.0"?><Error><Code>${status === 503 ? "SlowDown" : "NoSuchKey"}</Code></Error>`, { status, headers: { "Content-Type": "application/xml" } }),
    });
    servers.push(server);
    const c = client(`http://127.0.0.1:${server.port}`);
    await expect(c.get("ab/x")).rejects.toBeInstanceOf(RemoteError);
    expect(c.lastError.value).toMatchObject({ kind: "http", status: 503, code: "SlowDown" });
    expect(c.lastError.failingNow).toBe(true);
    status = 404; // a missing key is an answer
    expect(await c.get("ab/x")).toBeNull();
    expect(c.lastError.failingNow).toBe(false);
    expect(c.lastError.lastSuccess).toBeGreaterThan(0);
    expect(c.lastError.value!.code).toBe("SlowDown");
  });
});

describe("LastBucketError", () => {
  test("the cause chain, with codes, as one line", () => {
    const root = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" });
    const mid = new Error("fetch failed", { cause: root });
    const h = new LastBucketError(() => 1234);
    h.failed(new RemoteError("network", "s3: put k: fetch failed", undefined, undefined, { cause: mid }), " (hint: check the network)");
    expect(h.value).toEqual({
      at: 1234,
      message: "s3: put k: fetch failed",
      kind: "network",
      cause: "fetch failed <- connect ECONNREFUSED 127.0.0.1:9",
      hint: "check the network",
    });
  });
});
