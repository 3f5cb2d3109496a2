// Partial sumdb tiles a GOPROXY=file:// client may ask for: the math, the
// completion of a directory, and the real go command reading a proxy cache
// directory whose lookups were verified against a newer tree than their own.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createModProxy } from "../../src/modproxy/serve/proxy.ts";
import { completeTiles, dirTileFiles, partialTiles, storedTreeSizes, treeSizeOf } from "../../src/modproxy/sumdb/tiles.ts";
import { importTree } from "../../src/modproxy/transfer/import.ts";
import { walkFiles } from "../../src/modproxy/transfer/tree.ts";
import { ModStore } from "../../src/modproxy/storage/store.ts";
import { tempDir } from "../helpers/env.ts";
import { go, goEnv } from "../helpers/go.ts";
import { proxyOptions, startSumdb, startUpstream, writeTestModules, type Sumdb, type Upstream } from "./helpers.ts";

/** Writes files under root, making their directories. */
const writerIn = (root: string) => (rel: string, data: string | Uint8Array) => {
  mkdirSync(join(root, rel, ".."), { recursive: true });
  writeFileSync(join(root, rel), data);
};

const note = (n: number) => `go.sum database tree\n${n}\n${Buffer.alloc(32, 1).toString("base64")}\n\n— sum.test abc=\n`;

describe("tile math", () => {
  test("partialTiles: one partial tile per level whose hash count is not a multiple of 2^h", () => {
    expect(partialTiles(8, 0)).toEqual([]);
    expect(partialTiles(8, 1)).toEqual([{ h: 8, l: 0, n: 0, w: 1 }]);
    expect(partialTiles(8, 256)).toEqual([{ h: 8, l: 1, n: 0, w: 1 }]);
    expect(partialTiles(8, 300)).toEqual([
      { h: 8, l: 0, n: 1, w: 44 },
      { h: 8, l: 1, n: 0, w: 1 },
    ]);
    expect(partialTiles(8, 65536 * 3 + 5)).toEqual([
      { h: 8, l: 0, n: 768, w: 5 },
      { h: 8, l: 2, n: 0, w: 3 },
    ]);
    expect(partialTiles(2, 7)).toEqual([
      { h: 2, l: 0, n: 1, w: 3 },
      { h: 2, l: 1, n: 0, w: 1 },
    ]);
  });

  test("treeSizeOf reads a signed tree note alone or after a lookup record", () => {
    expect(treeSizeOf(new TextEncoder().encode(note(1234)))).toBe(1234);
    expect(treeSizeOf(new TextEncoder().encode(`7\nexample.com/a v1.0.0 h1:x=\nexample.com/a v1.0.0/go.mod h1:y=\n\n${note(42)}`))).toBe(42);
    expect(treeSizeOf(new TextEncoder().encode("not a note\n"))).toBeNull();
    expect(treeSizeOf(new TextEncoder().encode("go.sum database tree\n-1\n"))).toBeNull();
  });
});

describe("completeTiles on a directory", () => {
  test("writes the narrower partial tiles the stored trees need, as prefixes of wider ones, and reports what it cannot", async () => {
    const t = tempDir("gostash-tiles-");
    try {
      const db = join(t.path, "sum.test");
      const put = writerIn(db);
      const hashes = (count: number) => Uint8Array.from({ length: count * 32 }, (_, i) => (i * 7) % 251);
      // Trees of 3, 5 and 300 records; stored: level-0 tile 000 at width 5, 001 at width 44, level-1 000 at width 1.
      put("lookup/example.com/a@v1.0.0", `1\nexample.com/a v1.0.0 h1:x=\n\n${note(3)}`);
      put("lookup/example.com/b@v1.0.0", `4\nexample.com/b v1.0.0 h1:x=\n\n${note(300)}`);
      put("latest", note(5));
      put("tile/8/0/000.p/5", hashes(5));
      put("tile/8/0/001.p/44", hashes(44));
      put("tile/8/1/000.p/1", hashes(1));
      // A tree size whose tile nobody stored wider: reported, not invented.
      put("lookup/example.com/c@v1.0.0", `9\nexample.com/c v1.0.0 h1:x=\n\n${note(600)}`);
      const written: string[] = [];
      const files = dirTileFiles(db, (rel) => written.push(rel));
      const sizes = await storedTreeSizes(files, (rel) => walkFiles(join(db, rel)));
      expect([...sizes].sort((a, b) => a - b)).toEqual([3, 5, 300, 600]);
      const r = await completeTiles(files, sizes);
      expect(written.sort()).toEqual(["tile/8/0/000.p/3"]);
      expect(new Uint8Array(readFileSync(join(db, "tile/8/0/000.p/3")))).toEqual(hashes(5).slice(0, 96));
      expect(r).toEqual({ written: 1, incomplete: [600] });
      // Again: nothing more to do.
      expect(await completeTiles(files, sizes)).toEqual({ written: 0, incomplete: [600] });
    } finally {
      t.cleanup();
    }
  });
});

describe("mod import", () => {
  test("completes the imported databases' partial tiles in the store", async () => {
    const t = tempDir("gostash-tiles-import-");
    try {
      const src = join(t.path, "src");
      const put = writerIn(src);
      put("sumdb/sum.test/lookup/example.com/a@v1.0.0", `0\nexample.com/a v1.0.0 h1:x=\n\n${note(2)}`);
      put("sumdb/sum.test/lookup/example.com/b@v1.0.0", `1\nexample.com/b v1.0.0 h1:x=\n\n${note(7)}`);
      put("sumdb/sum.test/tile/8/0/000.p/7", new Uint8Array(7 * 32).fill(9));
      const store = new ModStore(join(t.path, "store"));
      const st = await importTree({ src, store });
      expect(st.imported).toBe(3);
      expect(readFileSync(join(store.dir, "sumdb/sum.test/tile/8/0/000.p/2"))).toEqual(Buffer.alloc(64, 9));
    } finally {
      t.cleanup();
    }
  });
});

describe("a proxy cache directory as GOPROXY=file://", () => {
  let root: ReturnType<typeof tempDir>;
  let up: Upstream;
  let db: Sumdb;
  let srv: ReturnType<typeof Bun.serve>;
  let store: string;
  let base: string;
  beforeAll(async () => {
    root = tempDir("gostash-tiles-e2e-");
    const upDir = join(root.path, "up");
    writeTestModules(upDir);
    up = startUpstream(upDir);
    db = await startSumdb(upDir);
    store = join(root.path, "store");
    const p = createModProxy(proxyOptions(store, up.url, { sumdbs: [{ name: db.name, url: db.url }] }));
    srv = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: p.fetch });
    base = `http://127.0.0.1:${srv.port}/mod`;
  }, 240_000);
  afterAll(() => {
    srv?.stop(true);
    up?.stop();
    db?.stop();
    root?.cleanup();
  });

  test("a lookup verified against a newer tree gets its own narrower tile, so a fresh go command can verify it", async () => {
    // What a go command does when it reads lookup B's newer tree before
    // verifying A: both lookups, then only the tile of the newer tree.
    const get = async (p: string) => {
      const r = await fetch(`${base}/sumdb/${db.name}/${p}`);
      expect(r.status, p).toBe(200);
      return new Uint8Array(await r.arrayBuffer());
    };
    for (const ext of ["info", "mod", "zip"]) expect((await fetch(`${base}/example.com/lib/@v/v1.1.0.${ext}`)).status).toBe(200);
    const a = treeSizeOf(await get("lookup/example.com/lib@v1.1.0"))!;
    const b = treeSizeOf(await get("lookup/example.com/dep@v1.0.0"))!;
    expect(b).toBeGreaterThan(a);
    expect(b).toBeLessThan(256);
    await get(`tile/8/0/000.p/${b}`);
    const narrow = join(store, "sumdb", db.name, `tile/8/0/000.p/${a}`);
    for (let i = 0; i < 100 && !existsSync(narrow); i++) await Bun.sleep(50);
    expect(existsSync(narrow)).toBe(true);

    // A go command with nothing of its own verifies A against A's tree, from the directory alone.
    const home = join(root.path, "home");
    const env = goEnv({
      gocache: join(root.path, "gocache"),
      home,
      extra: {
        GOMODCACHE: join(home, "modcache"),
        GOPATH: join(home, "gopath"),
        GOPROXY: `file://${store}`,
        GOSUMDB: db.vkey,
        GONOSUMDB: "",
        GOPRIVATE: "",
        GOFLAGS: "-mod=mod",
      },
    });
    const r = await go(["mod", "download", "-json", "example.com/lib@v1.1.0"], root.path, env, 240_000);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(JSON.parse(r.stdout).Error).toBeUndefined();
    expect(existsSync(join(home, "gopath", "pkg", "sumdb", db.name, "latest"))).toBe(true);
  }, 300_000);
});
