// Two module proxies sharing one S3 bucket (a real S3-compatible server,
// versitygw): what one fetched from the upstream, the other serves from the
// bucket with its own upstream dead. Only immutable files are mirrored.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { S3Config } from "../../src/config/config.ts";
import { createModProxy } from "../../src/modproxy/serve/proxy.ts";
import { createS3Mirror, mirrored } from "../../src/modproxy/storage/mirror.ts";
import { createS3Client } from "../../src/s3/client.ts";
import { parseUpstreams } from "../../src/modproxy/upstream/fetch.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { tempDir } from "../helpers/env.ts";
import { startS3Server, type S3Server } from "../helpers/s3server.ts";
import { startUpstream, writeTestModules, type Upstream } from "./helpers.ts";

let root: ReturnType<typeof tempDir>;
let s3: S3Server;
let up: Upstream;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  root = tempDir("gostash-modproxy-s3-");
  writeTestModules(join(root.path, "up"));
  up = startUpstream(join(root.path, "up"));
  s3 = await startS3Server();
  for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]) saved[k] = process.env[k];
  process.env.AWS_ACCESS_KEY_ID = s3.accessKey;
  process.env.AWS_SECRET_ACCESS_KEY = s3.secretKey;
}, 60_000);

afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  up?.stop();
  await s3?.stop();
  root?.cleanup();
});

function proxyWith(dir: string, upstream: string, readOnly = false) {
  const cfg: S3Config = {
    bucket: s3.bucket,
    region: s3.region,
    prefix: "team",
    endpoint: s3.endpoint,
    pathStyle: true,
    minUploadSize: 0,
    uploadConcurrency: 2,
    concurrency: 4,
    readOnly,
    flushTimeoutMs: 10_000,
    timeoutMs: 10_000,
    compress: false,
  };
  const metrics = new Metrics();
  const logger = createLogger({});
  const p = createModProxy({
    dir,
    upstreams: parseUpstreams(upstream),
    sumdbs: [],
    listTtlMs: 60_000,
    swrMs: 0,
    notFoundTtlMs: 0,
    timeoutMs: 2_000,
    retries: 0,
    metrics,
    logger,
    mirror: createS3Mirror({ client: createS3Client(cfg, { metrics, logger }), readOnly, logger, metrics }),
  });
  return { p, metrics, get: (path: string) => p.fetch(new Request(`http://proxy.test/mod/${path}`)) };
}

test("what is mirrored", () => {
  expect(mirrored("example.com/a/@v/v1.0.0.zip")).toBe(true);
  expect(mirrored("example.com/a/@v/v1.0.0.info")).toBe(true);
  expect(mirrored("example.com/a/@v/list")).toBe(false);
  expect(mirrored("example.com/a/@latest")).toBe(false);
  expect(mirrored("sumdb/sum.golang.org/lookup/example.com/a@v1.0.0")).toBe(true);
  expect(mirrored("sumdb/sum.golang.org/tile/8/0/000")).toBe(true);
  expect(mirrored("sumdb/sum.golang.org/tile/8/0/000.p/5")).toBe(false);
  expect(mirrored("sumdb/sum.golang.org/latest")).toBe(false);
});

test("a second daemon serves immutable files from the bucket when its upstream is dead", async () => {
  const a = proxyWith(join(root.path, "a"), up.url);
  const files = ["example.com/lib/@v/v1.1.0.info", "example.com/lib/@v/v1.1.0.mod", "example.com/lib/@v/v1.1.0.zip", "example.com/!upper/!case/@v/v1.0.0.zip"];
  for (const f of files) {
    const r = await a.get(f);
    expect(r.status, f).toBe(200);
    await r.arrayBuffer();
  }
  expect((await a.get("example.com/lib/@v/list")).status).toBe(200);
  expect(await a.p.mirror!.flush(20_000)).toBe(0);
  expect(a.metrics.get("modproxy_s3_uploads")).toBe(files.length);
  for (const f of files) expect(existsSync(join(s3.dataDir, s3.bucket, "team", "mod", f)), f).toBe(true);
  expect(existsSync(join(s3.dataDir, s3.bucket, "team", "mod", "example.com/lib/@v/list"))).toBe(false);

  const b = proxyWith(join(root.path, "b"), "http://127.0.0.1:1");
  for (const f of files) {
    const r = await b.get(f);
    expect(r.status, f).toBe(200);
    const want = readFileSync(join(root.path, "up", f));
    expect(Buffer.from(await r.arrayBuffer()).equals(want), f).toBe(true);
    // Stored locally too (and validated on the way), not uploaded back.
    expect(readFileSync(join(root.path, "b", f)).equals(want), f).toBe(true);
  }
  expect(b.metrics.get("modproxy_s3_hits")).toBe(files.length);
  expect(await b.p.mirror!.flush(5_000)).toBe(0);
  expect(b.metrics.get("modproxy_s3_uploads")).toBe(0);
  // list is never mirrored: with the upstream dead there is nothing to serve.
  expect((await b.get("example.com/lib/@v/list")).status).toBe(502);
}, 120_000);

test("--read-only reads the bucket but never writes to it", async () => {
  const c = proxyWith(join(root.path, "c"), up.url, true);
  const r = await c.get("example.com/dep/@v/v1.0.0.zip");
  expect(r.status).toBe(200);
  await r.arrayBuffer();
  expect(await c.p.mirror!.flush(5_000)).toBe(0);
  expect(c.metrics.get("modproxy_s3_uploads")).toBe(0);
  expect(existsSync(join(s3.dataDir, s3.bucket, "team", "mod", "example.com/dep/@v/v1.0.0.zip"))).toBe(false);
}, 60_000);
