// The one S3 client (src/s3/client.ts) against a real S3-compatible server
// (versitygw on loopback), directly and through the fault proxy: signing,
// addressing, metadata, ranges, timeouts, retries, the breaker, and what a
// failure tells the user.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { GetObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import type { S3Config } from "../../src/config/config.ts";
import { createS3Client, type S3Client } from "../../src/s3/client.ts";
import { RemoteError } from "../../src/s3/errors.ts";
import { Breaker } from "../../src/util/breaker.ts";
import type { Logger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { startFaultProxy, type FaultProxy } from "../helpers/faultproxy.ts";
import { setEnv } from "../helpers/env.ts";
import { startS3Server, type S3Server } from "../helpers/s3server.ts";

let s3: S3Server;
let restoreEnv = () => {};
let proxy: FaultProxy;
const clients: S3Client[] = [];

function cfg(over: Partial<S3Config> = {}): S3Config {
  return {
    bucket: s3.bucket,
    region: "us-east-1",
    prefix: "",
    endpoint: s3.endpoint,
    pathStyle: true,
    minUploadSize: 0,
    uploadConcurrency: 4,
    concurrency: 8,
    readOnly: false,
    flushTimeoutMs: 5_000,
    compress: true,
    timeoutMs: 2_000,
    ...over,
  };
}

/** A logger that keeps what it was told, by level. */
function recordingLogger(): Logger & { lines: { level: string; text: string }[] } {
  const lines: { level: string; text: string }[] = [];
  const at = (level: string) => (...args: unknown[]) => void lines.push({ level, text: args.map(String).join(" ") });
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") } as Logger & { lines: { level: string; text: string }[] };
}

function client(over: Partial<S3Config> = {}, extra: { breaker?: Breaker; logger?: Logger; metrics?: Metrics } = {}): S3Client {
  const c = createS3Client(cfg(over), { logger: extra.logger ?? recordingLogger(), metrics: extra.metrics ?? new Metrics(), breaker: extra.breaker });
  clients.push(c);
  return c;
}

const hex = (n = 32) => Buffer.from(crypto.getRandomValues(new Uint8Array(n))).toString("hex");
const failureOf = <T>(p: Promise<T>) => p.then(() => null, (e) => e as RemoteError);

async function readAll(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

beforeAll(async () => {
  s3 = await startS3Server();
  restoreEnv = setEnv(s3.env);
  proxy = await startFaultProxy(s3.endpoint);
}, 60_000);

afterAll(async () => {
  restoreEnv();
  for (const c of clients) c.close();
  await proxy?.stop();
  await s3?.stop();
});

describe("against versitygw", () => {
  test("put then get: body and metadata intact, at [prefix/]name", async () => {
    const c = client({ prefix: "p1" });
    const name = `x/${hex()}`;
    const body = new TextEncoder().encode("hello from the shared tier\n");
    await c.put(name, body, { metadata: { "gostash-a": "1", "gostash-b": "two" } });
    expect(c.key(name)).toBe(`p1/${name}`);
    const head = await s3.client().send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `p1/${name}` }));
    expect(head.ContentLength).toBe(body.length);
    expect(head.Metadata).toEqual({ "gostash-a": "1", "gostash-b": "two" });
    const got = (await c.get(name))!;
    expect(got.status).toBe(200);
    expect(got.metadata).toEqual({ "gostash-a": "1", "gostash-b": "two" });
    expect(got.contentLength).toBe(body.length);
    expect(await readAll(got.body)).toEqual(Buffer.from(body));
  });

  test("a file body is streamed from disk (Bun.file)", async () => {
    const c = client();
    const path = `${s3.dataDir}/../upload-${hex(4)}`;
    const bytes = crypto.getRandomValues(new Uint8Array(65536));
    await Bun.write(path, bytes);
    await c.put("file-body", Bun.file(path));
    expect(await c.getBytes("file-body")).toEqual(bytes);
  });

  test("a range is one GET of just those bytes (206)", async () => {
    const c = client();
    const bytes = crypto.getRandomValues(new Uint8Array(10_000));
    await c.put("ranged", bytes);
    const got = (await c.get("ranged", { range: [100, 1099] }))!;
    expect(got.status).toBe(206);
    expect(got.contentLength).toBe(1000);
    expect(new Uint8Array(await readAll(got.body))).toEqual(bytes.subarray(100, 1100));
  });

  test("a prefix with characters that need encoding still signs and lands at the right key", async () => {
    const c = client({ prefix: "team a/go+cache=1" });
    await c.put("ab/k", new Uint8Array([7, 8]));
    const head = await s3.client().send(new HeadObjectCommand({ Bucket: s3.bucket, Key: "team a/go+cache=1/ab/k" }));
    expect(head.ContentLength).toBe(2);
    expect([...(await c.getBytes("ab/k"))!]).toEqual([7, 8]);
  });

  test("a missing object is null, not an error; a missing bucket is an error with a hint", async () => {
    const log = recordingLogger();
    expect(await client({}, { logger: log }).get(hex())).toBeNull();
    expect(log.lines).toEqual([]);
    const err = await failureOf(client({ bucket: "no-such-bucket-here" }, { logger: log }).get(hex()));
    expect(err).toBeInstanceOf(RemoteError);
    expect(err!.code).toBe("NoSuchBucket");
    expect(log.lines.some((l) => l.level === "warn" && l.text.includes("NoSuchBucket") && l.text.includes("hint:"))).toBe(true);
  });

  test("wrong credentials: an auth error, logged once at the default level with the S3 code and a hint", async () => {
    const saved = process.env.AWS_SECRET_ACCESS_KEY;
    process.env.AWS_SECRET_ACCESS_KEY = "not-the-secret";
    try {
      const log = recordingLogger();
      const metrics = new Metrics();
      const c = client({}, { logger: log, metrics });
      for (let i = 0; i < 3; i++) {
        const err = await failureOf(c.get(hex()));
        expect(err!.kind).toBe("auth");
        expect(err!.status).toBe(403);
      }
      const warns = log.lines.filter((l) => l.level === "warn");
      expect(warns.length).toBe(1);
      expect(warns[0]!.text).toMatch(/HTTP 403 \w+.*hint: /);
      expect(metrics.get("s3_errors")).toBe(3);
      // An answer is not a sick bucket: the breaker stays closed.
      expect(c.breaker.state).toBe("closed");
    } finally {
      process.env.AWS_SECRET_ACCESS_KEY = saved;
    }
  });

  test("an invalid bucket name is reported with its S3 code and the naming rules", async () => {
    const log = recordingLogger();
    const err = await failureOf(client({ bucket: "Bad_Bucket" }, { logger: log }).put("k", new Uint8Array(1)));
    expect(err).toBeInstanceOf(RemoteError);
    const warn = log.lines.find((l) => l.level === "warn")!;
    expect(warn.text).toContain("HTTP 400");
    expect(warn.text).toMatch(/InvalidBucketName|bucket names are 3-63 characters/);
  });

  test("getBytes refuses an object larger than asked for", async () => {
    const c = client();
    await c.put("big-one", new Uint8Array(5000));
    const err = await failureOf(c.getBytes("big-one", 1000));
    expect(err!.kind).toBe("badobject");
  });
});

describe("through the fault proxy", () => {
  test("server down: a network error, promptly", async () => {
    const c = client({ endpoint: proxy.endpoint });
    proxy.set({ down: true });
    try {
      const err = await failureOf(c.get(hex()));
      expect(["network", "timeout"]).toContain(err!.kind);
      expect(err!.backendFault).toBe(true);
    } finally {
      proxy.reset();
    }
  });

  test("500s: an http error carrying the status; a PUT is tried three times", async () => {
    const c = client({ endpoint: proxy.endpoint });
    proxy.set({ status500: true });
    proxy.resetCounts();
    try {
      const err = await failureOf(c.get(hex()));
      expect(err!.kind).toBe("http");
      expect(err!.status).toBe(500);
      expect(proxy.counts.GET).toBe(1);
      const perr = await failureOf(c.put(hex(), new Uint8Array(1)));
      expect(perr!.kind).toBe("http");
      expect(proxy.counts.PUT).toBe(3);
    } finally {
      proxy.reset();
    }
  });

  test("a PUT that fails once is retried and lands", async () => {
    const c = client({ endpoint: proxy.endpoint });
    proxy.set({ status500: true, only: "PUT" });
    setTimeout(() => proxy.reset(), 50);
    await c.put("retried", new Uint8Array([1, 2, 3]));
    expect([...(await client().getBytes("retried"))!]).toEqual([1, 2, 3]);
  });

  test("a server that never answers: a timeout after --s3-timeout", async () => {
    const c = client({ endpoint: proxy.endpoint, timeoutMs: 500 });
    proxy.set({ hang: true });
    try {
      const err = await failureOf(c.get(hex()));
      expect(err!.kind).toBe("timeout");
    } finally {
      proxy.reset();
    }
  });

  test("repeated failures open the breaker: later requests are not sent, then a trial closes it", async () => {
    let now = 0;
    const breaker = new Breaker({ threshold: 3, cooldownMs: 1_000, now: () => now });
    const c = client({ endpoint: proxy.endpoint }, { breaker });
    proxy.set({ status500: true, only: "GET" });
    proxy.resetCounts();
    try {
      for (let i = 0; i < 3; i++) expect((await failureOf(c.get(hex())))!.kind).toBe("http");
      expect(breaker.state).toBe("open");
      const skipped = await failureOf(c.get(hex()));
      expect(skipped!.kind).toBe("unavailable");
      expect(proxy.counts.GET).toBe(3);
    } finally {
      proxy.reset();
    }
    now += 1_001;
    expect(await c.get(hex())).toBeNull();
    expect(breaker.state).toBe("closed");
  });

  test("a body cut midway fails while reading, never ends quietly short", async () => {
    const body = crypto.getRandomValues(new Uint8Array(65536));
    await client().put("cut", body);
    const c = client({ endpoint: proxy.endpoint });
    proxy.set({ cutBody: true, only: "GET" });
    try {
      const got = (await c.get("cut"))!;
      let n = 0;
      const err = await failureOf(
        (async () => {
          for await (const chunk of got.body) n += chunk.length;
        })(),
      );
      // Either the stream errors, or it ends short: never complete.
      if (err === null) expect(n).toBeLessThan(body.length);
      else expect(err).toBeInstanceOf(RemoteError);
    } finally {
      proxy.reset();
    }
  });

  test("a body that stalls midway is cut after --s3-timeout of silence: a timeout error, never a short body", async () => {
    const body = crypto.getRandomValues(new Uint8Array(1 << 20));
    await client().put("stalls", body);
    const c = client({ endpoint: proxy.endpoint, timeoutMs: 400 });
    proxy.set({ stallBody: true, only: "GET" });
    try {
      const got = (await c.get("stalls"))!;
      let n = 0;
      const err = await failureOf(
        (async () => {
          for await (const chunk of got.body) n += chunk.length;
        })(),
      );
      expect(err).toBeInstanceOf(RemoteError);
      expect((err as RemoteError).kind).toBe("timeout");
      expect((err as Error).message).toContain("body stalled for 400ms");
      expect(n).toBeLessThan(body.length);
    } finally {
      proxy.reset();
    }
  });

  test("a reader that pauses between chunks longer than --s3-timeout is not cut: only the bucket's silence counts as a stall", async () => {
    const body = crypto.getRandomValues(new Uint8Array(8 << 20));
    await client().put("slow-reader", body);
    const c = client({ timeoutMs: 300 });
    const got = (await c.get("slow-reader"))!;
    const parts: Uint8Array[] = [];
    for await (const chunk of got.body) {
      parts.push(chunk.slice());
      if (parts.length <= 2) await Bun.sleep(700); // landing threads busy: the reader's time, not the bucket's
    }
    expect(parts.length).toBeGreaterThan(2);
    expect(Buffer.concat(parts).equals(Buffer.from(body))).toBe(true);
  });

  test("requests through the proxy keep their signature valid", async () => {
    const c = client({ endpoint: proxy.endpoint });
    proxy.resetCounts();
    await c.put("through", new Uint8Array([1, 2, 3]));
    expect([...(await c.getBytes("through"))!]).toEqual([1, 2, 3]);
    expect(proxy.counts.PUT).toBe(1);
    expect(proxy.counts.GET).toBe(1);
    const raw = await s3.client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: "through" }));
    expect([...(await raw.Body!.transformToByteArray())]).toEqual([1, 2, 3]);
  });
});
