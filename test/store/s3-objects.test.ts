// A per-action object's zstd body (src/store/s3-objects.ts decompressBody)
// is decompressed only when its frame headers declare exactly the size its
// metadata says: a bucket that lies cannot make the reader expand a few KiB
// into gigabytes before the size check (util/zstd-bounded.ts).
import { afterEach, describe, expect, spyOn, test } from "bun:test";
import { decompressBody, type ObjectMeta } from "../../src/store/s3-objects.ts";
import { rleFrame, undeclared } from "../helpers/zstd.ts";

const meta = (size: number): ObjectMeta => ({ outputID: "0".repeat(64), size, timeNanos: 1n, encoding: "zstd" });
const bad = (why: string): never => {
  throw new Error(`bad: ${why}`);
};

let spies: { mockRestore(): void }[] = [];
afterEach(() => {
  for (const s of spies.splice(0)) s.mockRestore();
});
function spyDecompress() {
  const sync = spyOn(Bun, "zstdDecompressSync");
  const pool = spyOn(Bun, "zstdDecompress");
  spies.push(sync, pool);
  return () => sync.mock.calls.length + pool.mock.calls.length;
}

describe("per-action objects: zstd bodies within their metadata", () => {
  test("a body as written (Bun.zstdCompress, small and large) declares its size and decompresses", async () => {
    for (const n of [100, 200_000]) {
      const raw = new Uint8Array(n).map((_, i) => (i * 13) & 255);
      const out = await decompressBody(await Bun.zstdCompress(raw, { level: 1 }), meta(n), bad);
      expect(Buffer.from(out).equals(Buffer.from(raw))).toBe(true);
    }
  });

  test("a body declaring more than the metadata, or nothing, is refused without being decompressed", async () => {
    const calls = spyDecompress();
    await expect(decompressBody(rleFrame(1 << 30, 1 << 30), meta(1000), bad)).rejects.toThrow(`declares ${1 << 30} bytes, metadata says 1000`);
    const raw = new Uint8Array(5000).fill(3);
    await expect(decompressBody(await undeclared(raw), meta(5000), bad)).rejects.toThrow("does not declare its size");
    expect(calls()).toBe(0);
  });

  test("a body declaring the metadata's size but holding 512 MiB is refused by zstd itself, never expanded (peak memory shows it)", async () => {
    const peakKiB = process.resourceUsage().maxRSS;
    const body = rleFrame(512 << 20, 1000); // over 16 KiB: decompressed on the thread pool
    await expect(decompressBody(body, meta(1000), bad)).rejects.toThrow("bad: zstd body does not decompress");
    expect(process.resourceUsage().maxRSS - peakKiB).toBeLessThan(128 << 10);
  });
});
