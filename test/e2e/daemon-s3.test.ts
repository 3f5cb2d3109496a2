// Graceful shutdown with the S3 tier: uploads still queued when SIGTERM
// arrives reach the S3 server (a real versitygw, behind a proxy that makes
// every request slow so the queue is still full at that moment).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { tempDir } from "../helpers/env.ts";
import { startFaultProxy, type FaultProxy } from "../helpers/faultproxy.ts";
import { startS3Server, type S3Server } from "../helpers/s3server.ts";
import { putLines, randomID, RawClient, startDaemon } from "../daemon/helpers.ts";
import { parsePrometheus, value } from "../http/prom-parse.ts";

const tmp = tempDir("gostash-e2e-daemon-s3-");
let s3: S3Server;
let proxy: FaultProxy;

beforeAll(async () => {
  s3 = await startS3Server();
  proxy = await startFaultProxy(s3.endpoint);
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await s3?.stop();
  tmp.cleanup();
});

describe("daemon with the S3 tier", () => {
  test(
    "SIGTERM flushes the uploads queued before it; exit 0",
    async () => {
      const d = await startDaemon(
        [`--plugin=${join(tmp.path, "d.sock")}`, "--http=0", `--cache-dir=${join(tmp.path, "cache")}`, "--upload-concurrency=2", "--flush-timeout=120s"],
        { ...s3.env, GOCACHE_S3_ENDPOINT_URL: proxy.endpoint },
      );
      try {
        // Slow S3 from here on: each request waits 400 ms at the proxy.
        proxy.set({ latencyMs: 400 });
        const N = 16;
        const actions = Array.from({ length: N }, () => randomID());
        const c = await RawClient.connect(d.addr);
        await c.send(actions.map((a, i) => putLines(i + 1, a, new Uint8Array(20_000 + i).fill(i))).join(""));
        for (let i = 1; i <= N; i++) expect((await c.response(i)).DiskPath).toBeString();
        c.halfClose();
        expect(await c.waitClosed()).toBe(true);
        const fams = parsePrometheus(await (await fetch(`${d.http}/metrics`)).text());
        const uploaded = value(fams, "gostash_uploads_total") ?? 0;
        // With 2 uploads at a time and 400 ms each, most are still queued now.
        expect(uploaded).toBeLessThan(N);

        expect(await d.stop("SIGTERM", 120_000)).toBe(0);
        expect(d.stderr()).toContain("stopped (SIGTERM)");
        expect(d.stderr()).not.toContain("upload(s) left");
        proxy.reset();
        const keys = new Set(await s3.listKeys());
        for (const a of actions) expect([...keys].some((k) => k.endsWith(a))).toBe(true);
      } finally {
        if (d.proc.exitCode === null) await d.stop("SIGKILL");
      }
    },
    240_000,
  );
});
