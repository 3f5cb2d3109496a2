// A read-only client against a daemon with the S3 tier (a real versitygw):
// it gets what read-write clients stored (from disk and from the bucket), its
// puts are answered, and yet nothing it sends ever reaches the bucket or the
// daemon's cache — not even an attempt to overwrite an existing action.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/env.ts";
import { startS3Server, type S3Server } from "../helpers/s3server.ts";
import { b64, putLines, getLine, randomID, RawClient, sha256hex, startDaemon } from "../daemon/helpers.ts";

const tmp = tempDir("gostash-e2e-auth-s3-");
let s3: S3Server;
const RW = "rw-s3-token";
const RO = "ro-s3-token";

beforeAll(async () => {
  s3 = await startS3Server();
}, 60_000);

afterAll(async () => {
  await s3?.stop();
  tmp.cleanup();
});

function cacheFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((s) => /^[0-9a-f]{2}$/.test(s))
    .flatMap((s) => readdirSync(join(dir, s)).map((f) => `${s}/${f}`))
    .sort();
}

async function session(addr: Parameters<typeof RawClient.connect>[0], token: string, text: string, ids: number[]) {
  const c = await RawClient.connect(addr);
  await c.send(`GOSTASH-AUTH ${token}\n${text}`);
  const out = new Map<number, Awaited<ReturnType<RawClient["response"]>>>();
  for (const id of ids) out.set(id, await c.response(id, 30_000));
  c.halfClose();
  expect(await c.waitClosed(30_000)).toBe(true);
  return out;
}

describe("read-only token with the S3 tier", () => {
  test("gets from disk and bucket; puts answered but never uploaded nor shared", async () => {
    const a = randomID();
    const aBody = new Uint8Array(30_000).fill(7);
    const b = randomID();
    const bBody = new Uint8Array(25_000).fill(9);
    const poison = new Uint8Array(30_000).fill(1);

    // Daemon 1: a read-write client stores A; a read-only client reads it, stores B, tries to overwrite A.
    const cache1 = join(tmp.path, "cache1");
    const d1 = await startDaemon([`--plugin=${join(tmp.path, "d1.sock")}`, "--http=0", `--cache-dir=${cache1}`, "--flush-timeout=60s"], {
      ...s3.env,
      GOSTASH_TOKEN: RW,
      GOSTASH_READ_TOKEN: RO,
    });
    try {
      const w = await session(d1.addr, RW, putLines(1, a, aBody), [1]);
      expect(w.get(1)!.DiskPath).toBeString();
      const before = cacheFiles(cache1);
      const r = await session(d1.addr, RO, getLine(1, a) + putLines(2, b, bBody) + putLines(3, a, poison) + getLine(4, b), [1, 2, 3, 4]);
      expect(r.get(1)!.OutputID).toBe(b64(sha256hex(aBody)));
      expect(r.get(2)!.Err).toBeUndefined();
      expect(r.get(2)!.DiskPath!.startsWith(join(cache1, "gostash-read-only"))).toBe(true);
      expect(r.get(3)!.DiskPath!.startsWith(join(cache1, "gostash-read-only"))).toBe(true);
      expect(r.get(4)!.Miss).toBe(true);
      expect(cacheFiles(cache1)).toEqual(before);
      expect(await d1.stop("SIGTERM", 90_000)).toBe(0); // flushes every upload
    } finally {
      if (d1.proc.exitCode === null) await d1.stop("SIGKILL");
    }
    const keys = await s3.listKeys();
    expect(keys.filter((k) => k.endsWith(a))).toHaveLength(1);
    expect(keys.some((k) => k.endsWith(b))).toBe(false);
    expect(keys).toHaveLength(1);

    // Daemon 2, empty local cache, same bucket: A comes from the bucket, unpoisoned, to a read-only client too.
    const d2 = await startDaemon([`--plugin=${join(tmp.path, "d2.sock")}`, "--http=0", `--cache-dir=${join(tmp.path, "cache2")}`], {
      ...s3.env,
      GOSTASH_TOKEN: RW,
      GOSTASH_READ_TOKEN: RO,
    });
    try {
      const r = await session(d2.addr, RO, getLine(1, a) + getLine(2, b), [1, 2]);
      expect(r.get(1)!.OutputID).toBe(b64(sha256hex(aBody)));
      expect(await Bun.file(r.get(1)!.DiskPath!).bytes()).toEqual(aBody);
      expect(r.get(2)!.Miss).toBe(true);
      const w = await session(d2.addr, RW, getLine(1, a), [1]);
      expect(w.get(1)!.OutputID).toBe(b64(sha256hex(aBody)));
    } finally {
      await d2.stop("SIGTERM", 30_000);
    }
  }, 240_000);
});
