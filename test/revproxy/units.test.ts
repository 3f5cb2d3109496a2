// The reverse proxy's small parts: caching rules, host matching, the entry
// file format, the memory cache.
import { afterAll, describe, expect, test } from "bun:test";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { tempDir } from "../helpers/env.ts";
import { decodeHead, encodeHead, EntryWriter, HEAD_BYTES, readEntryHeader } from "../../src/revproxy/entry-file.ts";
import { canonicalURL, entryKey } from "../../src/revproxy/keys.ts";
import { MemoryCache } from "../../src/revproxy/memory-cache.ts";
import { decideStorage, parseCacheControl, requestCacheable } from "../../src/revproxy/policy.ts";
import { parseAuthority, Targets } from "../../src/revproxy/targets.ts";

const tmp = tempDir("gostash-revproxy-units-");
afterAll(() => tmp.cleanup());

const decide = (cc: string | null, o: { status?: number; auth?: boolean; age?: string } = {}) => {
  const h = new Headers();
  if (cc !== null) h.set("cache-control", cc);
  if (o.age) h.set("age", o.age);
  return decideStorage(o.status ?? 200, h, o.auth ?? false);
};

describe("caching rules (go-cache-plugin's, plus a shared cache's)", () => {
  test("immutable, or must-revalidate with max-age over 60 days, go to disk", () => {
    expect(decide("public, max-age=31536000, immutable").storage).toBe("disk");
    expect(decide("immutable").storage).toBe("disk");
    expect(decide("must-revalidate, max-age=5184001").storage).toBe("disk");
    expect(decide("must-revalidate, max-age=5184000").storage).toBe("none");
  });

  test("a max-age under an hour goes to memory for what is left of it", () => {
    expect(decide("max-age=300")).toEqual({ storage: "memory", ttlMs: 300_000 });
    expect(decide("max-age=300", { age: "100" })).toEqual({ storage: "memory", ttlMs: 200_000 });
    expect(decide("max-age=300", { age: "300" }).storage).toBe("none");
    expect(decide("max-age=3600").storage).toBe("none");
    expect(decide("max-age=0").storage).toBe("none");
  });

  test("no-store, no-cache, private, non-200 and nothing at all are never kept", () => {
    for (const cc of ["no-store, immutable", "no-cache, max-age=60", "private, immutable", null]) expect(decide(cc).storage).toBe("none");
    expect(decide("immutable", { status: 206 }).storage).toBe("none");
    expect(decide("immutable", { status: 404 }).storage).toBe("none");
  });

  test("an answer to a request with Authorization is kept only when it says public", () => {
    expect(decide("immutable", { auth: true }).storage).toBe("none");
    expect(decide("public, immutable", { auth: true }).storage).toBe("disk");
  });

  test("requests: GET without Range or no-store", () => {
    expect(requestCacheable(new Request("http://h/x"))).toBe(true);
    expect(requestCacheable(new Request("http://h/x", { method: "HEAD" }))).toBe(false);
    expect(requestCacheable(new Request("http://h/x", { headers: { range: "bytes=0-1" } }))).toBe(false);
    expect(requestCacheable(new Request("http://h/x", { headers: { "cache-control": "no-store" } }))).toBe(false);
    expect(parseCacheControl('max-age="60", Immutable').maxAge).toBe(60);
    expect(parseCacheControl('max-age="60", Immutable').directives.has("immutable")).toBe(true);
  });
});

describe("listed hosts", () => {
  const t = Targets.parse("Example.COM, files.example.com:8443,[::1]:9000,bücher.example", "--revproxy");

  test("a bare host is the scheme's default port; host:port is that port for either scheme", () => {
    expect(t.matches("example.com", 80, "http")).toBe(true);
    expect(t.matches("EXAMPLE.com", 443, "https")).toBe(true);
    expect(t.matches("example.com", 8080, "http")).toBe(false);
    expect(t.matches("files.example.com", 8443, "https")).toBe(true);
    expect(t.matches("files.example.com", 8443, "http")).toBe(true);
    expect(t.matches("files.example.com", 443, "https")).toBe(false);
    expect(t.matches("[::1]", 9000, "https")).toBe(true);
    expect(t.matches("xn--bcher-kva.example", 443, "https")).toBe(true);
    expect(t.hostnames()).toEqual(["example.com", "files.example.com", "::1", "xn--bcher-kva.example"]);
  });

  test("bad entries are errors naming the flag", () => {
    expect(() => Targets.parse("http://example.com", "GOCACHE_REVPROXY")).toThrow("GOCACHE_REVPROXY");
    expect(() => Targets.parse("example.com/path", "--revproxy")).toThrow("not a host");
    expect(() => Targets.parse(" , ", "--revproxy")).toThrow("no hosts");
  });

  test("CONNECT targets", () => {
    expect(parseAuthority("Example.com:443")).toEqual({ host: "example.com", port: 443 });
    expect(parseAuthority("[::1]:8443")).toEqual({ host: "::1", port: 8443 });
    expect(parseAuthority("example.com")).toBeNull();
    expect(parseAuthority("example.com:0")).toBeNull();
    expect(parseAuthority("a:b@example.com:443")).toBeNull();
  });

  test("keys: one per normalised URL, scheme included", () => {
    const k = (u: string, scheme: "http" | "https") => entryKey(canonicalURL(new Request(u), scheme).href);
    expect(k("http://Example.com:443/a?b=1", "https")).toBe(k("https://example.com/a?b=1", "https"));
    expect(k("http://example.com/a", "http")).not.toBe(k("http://example.com/a", "https"));
    expect(k("http://example.com/a", "http")).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("entry files", () => {
  test("the head is fixed-width and round-trips; anything else is rejected", () => {
    const h = { sha256: "ab".repeat(32), size: 12345, metaLength: 77 };
    const bytes = encodeHead(h);
    expect(bytes.length).toBe(HEAD_BYTES);
    expect(decodeHead(bytes)).toEqual(h);
    const bad = new Uint8Array(bytes);
    bad[0] = 0x47;
    expect(decodeHead(bad)).toBeNull();
    expect(decodeHead(bytes.subarray(0, 50))).toBeNull();
  });

  test("a written entry reads back; a truncated one does not", async () => {
    const path = join(tmp.path, "entry");
    const w = await EntryWriter.create(path, { url: "https://h/x", status: 200, headers: [["content-type", "text/plain"]], storedAt: 1 });
    await w.write(new TextEncoder().encode("hello "));
    await w.write(new TextEncoder().encode("world"));
    const head = await w.finish();
    expect(head.size).toBe(11);
    const fh = await open(path, "r");
    const st = await fh.stat();
    const read = await readEntryHeader(fh, st.size);
    expect(read?.meta.url).toBe("https://h/x");
    expect(read?.head.sha256).toBe(new Bun.CryptoHasher("sha256").update("hello world").digest("hex"));
    expect(await readEntryHeader(fh, st.size - 1)).toBeNull();
    await fh.close();
  });
});

describe("memory cache", () => {
  const entry = (n: number, expiresAt = Date.now() + 60_000) => ({ body: new Uint8Array(n), headers: [] as [string, string][], expiresAt });

  test("bounded by bytes, least recently used out first; an entry takes at most an eighth", () => {
    const m = new MemoryCache(800);
    expect(m.set("big", entry(101))).toBe(false);
    for (const k of ["a", "b", "c", "d", "e", "f", "g", "h"]) expect(m.set(k, entry(100))).toBe(true);
    expect(m.bytes).toBe(800);
    m.get("a"); // a is now the most recently used
    m.set("i", entry(100));
    expect(m.get("b")).toBeNull();
    expect(m.get("a")).not.toBeNull();
    expect(m.bytes).toBe(800);
  });

  test("stale entries are gone", () => {
    const m = new MemoryCache(1000);
    m.set("x", entry(10, Date.now() - 1));
    expect(m.get("x")).toBeNull();
    expect(m.bytes).toBe(0);
  });
});
