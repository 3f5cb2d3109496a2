// The build manifest layout (src/store/manifests.ts).
import { describe, expect, test } from "bun:test";
import { decodeManifest, encodeManifest, manifestName } from "../../src/store/manifests.ts";

const id = (n: number) => n.toString(16).padStart(64, "0");

describe("build manifest", () => {
  test("round-trips the action IDs in order", () => {
    const ids = [id(3), id(1), id(2)];
    expect(decodeManifest(encodeManifest(ids))).toEqual(ids);
    expect(manifestName(id(7))).toBe(`manifests/${id(7)}`);
  });

  test("rejects what is not a manifest", () => {
    expect(() => decodeManifest(new TextEncoder().encode("plain text"))).toThrow();
    expect(() => decodeManifest(Bun.zstdCompressSync(Buffer.from("something else\n")))).toThrow("not a gostash manifest");
    expect(() => decodeManifest(Bun.zstdCompressSync(Buffer.from(`gostash-manifest 1\n${id(1)}\n../../etc/passwd\n`)))).toThrow("is not an action ID");
  });

  test("keeps at most 50,000 actions", () => {
    const ids = Array.from({ length: 50_010 }, (_, i) => id(i));
    expect(decodeManifest(encodeManifest(ids)).length).toBe(50_000);
  });
});
