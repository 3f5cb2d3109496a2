// The S3 store against a real S3-compatible server (versitygw on loopback),
// directly and through the fault proxy.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import type { S3Config } from "../../src/config/config.ts";
import { createS3Store, decodeMeta, encodeMeta, objectKey, RemoteError, type ObjectMeta, type S3Store } from "../../src/store/s3.ts";
import { startFaultProxy, type FaultProxy } from "../helpers/faultproxy.ts";
import { startS3Server, type S3Server } from "../helpers/s3server.ts";

let s3: S3Server;
let proxy: FaultProxy;
const stores: S3Store[] = [];

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

function store(over: Partial<S3Config> = {}, timeoutMs = 2_000): S3Store {
  const s = createS3Store(cfg(over), { timeoutMs, maxSockets: 8 });
  stores.push(s);
  return s;
}

function hex(n = 32): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(n))).toString("hex");
}

async function readAll(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

beforeAll(async () => {
  s3 = await startS3Server();
  for (const [k, v] of Object.entries(s3.env)) process.env[k] = v;
  proxy = await startFaultProxy(s3.endpoint);
}, 60_000);

afterAll(async () => {
  for (const s of stores) s.close();
  await proxy?.stop();
  await s3?.stop();
});

describe("layout", () => {
  test("keys are [prefix/]<xx>/<actionhex>", () => {
    const a = "ab" + "0".repeat(62);
    expect(objectKey("", a)).toBe(`ab/${a}`);
    expect(objectKey("team/go", a)).toBe(`team/go/ab/${a}`);
  });

  test("metadata round-trips and malformed metadata is rejected", () => {
    const m: ObjectMeta = { outputID: hex(), size: 12345, timeNanos: 1763776000123456789n, encoding: "zstd" };
    expect(decodeMeta(encodeMeta(m))).toEqual(m);
    expect(decodeMeta(undefined)).toBeNull();
    expect(decodeMeta({ ...encodeMeta(m), "gostash-output": "xyz" })).toBeNull();
    expect(decodeMeta({ ...encodeMeta(m), "gostash-size": "-1" })).toBeNull();
    expect(decodeMeta({ ...encodeMeta(m), "gostash-encoding": "gzip" })).toBeNull();
  });
});

describe("against versitygw", () => {
  test("put then get: one object, body and metadata intact", async () => {
    const s = store({ prefix: "p1" });
    const a = hex();
    const body = new TextEncoder().encode("hello from the shared tier\n");
    const meta: ObjectMeta = { outputID: hex(), size: body.length, timeNanos: 1700000000000000001n, encoding: "identity" };
    await s.put(a, meta, body);
    // The object is where the documented layout says, with user metadata.
    const head = await s3.client().send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `p1/${a.slice(0, 2)}/${a}` }));
    expect(head.ContentLength).toBe(body.length);
    expect(head.Metadata?.["gostash-output"]).toBe(meta.outputID);
    const got = await s.get(a);
    expect(got).not.toBeNull();
    expect(got!.meta).toEqual(meta);
    expect(got!.contentLength).toBe(body.length);
    expect(await readAll(got!.body)).toEqual(Buffer.from(body));
  });

  test("a prefix with characters that need encoding still signs and lands at the right key", async () => {
    const s = store({ prefix: "team a/go+cache=1" });
    const a = hex();
    await s.put(a, { outputID: hex(), size: 2, timeNanos: 1n, encoding: "identity" }, new Uint8Array([7, 8]));
    const head = await s3.client().send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `team a/go+cache=1/${a.slice(0, 2)}/${a}` }));
    expect(head.ContentLength).toBe(2);
    expect([...(await readAll((await s.get(a))!.body))]).toEqual([7, 8]);
  });

  test("wrong credentials are an auth error", async () => {
    const saved = process.env.AWS_SECRET_ACCESS_KEY;
    process.env.AWS_SECRET_ACCESS_KEY = "not-the-secret";
    try {
      const s = store();
      const err = await s.get(hex()).then(() => null, (e) => e);
      expect(err).toBeInstanceOf(RemoteError);
      expect((err as RemoteError).kind).toBe("auth");
    } finally {
      process.env.AWS_SECRET_ACCESS_KEY = saved;
    }
  });

  test("a missing object is null, not an error", async () => {
    expect(await store().get(hex())).toBeNull();
  });

  test("an object without gostash metadata is a bad object", async () => {
    const a = hex();
    await s3.client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: objectKey("", a), Body: "foreign" }));
    const err = await store()
      .get(a)
      .then(() => null, (e) => e);
    expect(err).toBeInstanceOf(RemoteError);
    expect((err as RemoteError).kind).toBe("badobject");
  });

  test("large body streams in chunks", async () => {
    const s = store();
    const a = hex();
    const body = crypto.getRandomValues(new Uint8Array(3 << 20).subarray(0, 65536));
    const big = new Uint8Array(3 << 20);
    for (let i = 0; i < big.length; i += body.length) big.set(body.subarray(0, Math.min(body.length, big.length - i)), i);
    await s.put(a, { outputID: hex(), size: big.length, timeNanos: 1n, encoding: "identity" }, big);
    const got = await s.get(a);
    const back = await readAll(got!.body);
    expect(back.length).toBe(big.length);
    expect(Buffer.compare(back, Buffer.from(big))).toBe(0);
    const raw = await s3.client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: objectKey("", a) }));
    expect(raw.ContentLength).toBe(big.length);
    await raw.Body?.transformToByteArray();
  });
});

describe("through the fault proxy", () => {
  test("server down: a network error, promptly", async () => {
    const s = store({ endpoint: proxy.endpoint });
    proxy.set({ down: true });
    try {
      const err = await s.get(hex()).then(() => null, (e) => e);
      expect(err).toBeInstanceOf(RemoteError);
      expect(["network", "timeout"]).toContain((err as RemoteError).kind);
      expect((err as RemoteError).backendFault).toBe(true);
    } finally {
      proxy.reset();
    }
  });

  test("500s: an http error carrying the status", async () => {
    const s = store({ endpoint: proxy.endpoint });
    proxy.set({ status500: true });
    try {
      const err = await s.get(hex()).then(() => null, (e) => e);
      expect(err).toBeInstanceOf(RemoteError);
      expect((err as RemoteError).kind).toBe("http");
      expect((err as RemoteError).status).toBe(500);
      const perr = await s.put(hex(), { outputID: hex(), size: 1, timeNanos: 1n, encoding: "identity" }, new Uint8Array(1)).then(
        () => null,
        (e) => e,
      );
      expect((perr as RemoteError).kind).toBe("http");
    } finally {
      proxy.reset();
    }
  });

  test("a server that never answers: a timeout after timeoutMs", async () => {
    const s = store({ endpoint: proxy.endpoint }, 500);
    proxy.set({ hang: true });
    try {
      const err = await s.get(hex()).then(() => null, (e) => e);
      expect(err).toBeInstanceOf(RemoteError);
      expect((err as RemoteError).kind).toBe("timeout");
    } finally {
      proxy.reset();
    }
  });

  test("a body cut midway fails while reading, never ends quietly short", async () => {
    const direct = store();
    const s = store({ endpoint: proxy.endpoint });
    const a = hex();
    const body = crypto.getRandomValues(new Uint8Array(200_000).subarray(0, 65536));
    await direct.put(a, { outputID: hex(), size: body.length, timeNanos: 1n, encoding: "identity" }, body);
    proxy.set({ cutBody: true, only: "GET" });
    try {
      const got = await s.get(a);
      let n = 0;
      const err = await (async () => {
        for await (const c of got!.body) n += c.length;
      })().then(
        () => null,
        (e) => e,
      );
      // Either the stream errors, or it ends short; both must be caught by
      // the reader (tiered.ts checks the size). It must never be complete.
      if (err === null) expect(n).toBeLessThan(body.length);
      else expect(err).toBeInstanceOf(RemoteError);
    } finally {
      proxy.reset();
    }
  });

  test("requests through the proxy keep their signature valid", async () => {
    const s = store({ endpoint: proxy.endpoint });
    proxy.resetCounts();
    const a = hex();
    await s.put(a, { outputID: hex(), size: 3, timeNanos: 1n, encoding: "identity" }, new Uint8Array([1, 2, 3]));
    const got = await s.get(a);
    expect([...(await readAll(got!.body))]).toEqual([1, 2, 3]);
    expect(proxy.counts.PUT).toBe(1);
    expect(proxy.counts.GET).toBe(1);
  });
});
