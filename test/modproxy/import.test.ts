// mod import's parts: dirhash h1: against the go command's own go.sum
// hashes (a real $GOMODCACHE filled by `go mod download` from a local
// upstream), and importTree over that cache: junk skipped, a tampered zip
// rejected, everything else imported once. Without go.sum lines, against
// the local signed test checksum database: verified, tampered, unknown,
// unreachable, private, a wrong key, and a $GOMODCACHE's own sumdb files
// used with the database down.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, generateKeyPairSync } from "node:crypto";
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ModProxyConfig } from "../../src/modproxy/config.ts";
import { hash1, hashGoMod, hashZip } from "../../src/modproxy/module/dirhash.ts";
import { PrefixPatterns } from "../../src/modproxy/module/globs.ts";
import { parseGoSum } from "../../src/modproxy/module/gosum.ts";
import { importTree } from "../../src/modproxy/transfer/import.ts";
import { createImportSumdb, verifierFor } from "../../src/modproxy/transfer/import-sumdb.ts";
import { KNOWN_KEYS, NoteError, openNote, parseVerifierKey, type Verifier } from "../../src/modproxy/sumdb/note.ts";
import { ModStore } from "../../src/modproxy/storage/store.ts";
import { parseUpstreams } from "../../src/modproxy/upstream/fetch.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { tempDir } from "../helpers/env.ts";
import { go, goEnv } from "../helpers/go.ts";
import { startSumdb, startUpstream, writeModule, writeTestModules, type Sumdb, type Upstream } from "./helpers.ts";

let t: ReturnType<typeof tempDir>;
let up: Upstream;
let db: Sumdb;
let dl: string;
let sums: { Path: string; Version: string; Sum: string; GoModSum: string }[] = [];

beforeAll(async () => {
  t = tempDir("gostash-import-unit-");
  writeTestModules(join(t.path, "up"));
  up = startUpstream(join(t.path, "up"));
  db = await startSumdb(join(t.path, "up"));
  const home = join(t.path, "home");
  const e = goEnv({ gocache: join(t.path, "gocache"), home, extra: { GOPROXY: up.url, GOSUMDB: "off", GOFLAGS: "-mod=mod" } });
  const r = await go(["mod", "download", "-json", "example.com/lib@v1.1.0", "example.com/dep@v1.0.0", "example.com/Upper/Case@v1.0.0"], t.path, e, 240_000);
  expect(r.code, r.stderr).toBe(0);
  sums = r.stdout
    .split(/\n}\n?/)
    .filter((s) => s.trim())
    .map((s) => JSON.parse(`${s}\n}`));
  dl = join(home, "gopath", "pkg", "mod", "cache", "download");
}, 300_000);

afterAll(() => {
  up?.stop();
  db?.stop();
  t?.cleanup();
});

describe("dirhash", () => {
  test("h1: of zips and go.mod files equals the go command's", async () => {
    expect(sums.length).toBe(3);
    for (const s of sums) {
      const base = join(dl, s.Path.replace(/[A-Z]/g, (c) => `!${c.toLowerCase()}`), "@v", s.Version);
      expect(await hashZip(readFileSync(`${base}.zip`))).toBe(s.Sum);
      expect(hashGoMod(readFileSync(`${base}.mod`))).toBe(s.GoModSum);
    }
    expect(hash1([])).toBe("h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
  });
});

describe("importTree", () => {
  test("imports a real download cache, skips junk and existing files, rejects a tampered zip", async () => {
    const src = join(t.path, "src");
    cpSync(dl, src, { recursive: true });
    // The go command leaves .lock and .ziphash files; add a partial and a temp file.
    writeFileSync(join(src, "example.com/dep/@v/v1.0.0.zip.partial"), "x");
    writeFileSync(join(src, "example.com/dep/@v/v1.0.0.mod.tmp123"), "x");
    // Tamper: same entry names, different content.
    const zipPath = join(src, "example.com/lib/@v/v1.1.0.zip");
    const zip = readFileSync(zipPath);
    const at = zip.indexOf("dep.Twice(21)");
    expect(at).toBeGreaterThan(0);
    zip.write("dep.Twice(22)", at);
    writeFileSync(zipPath, zip);
    const goSum = parseGoSum(sums.map((s) => `${s.Path} ${s.Version} ${s.Sum}\n${s.Path} ${s.Version}/go.mod ${s.GoModSum}\n`).join(""));
    const store = new ModStore(join(t.path, "store"));
    const outcomes: string[] = [];
    const st = await importTree({ src, store, goSum, onFile: (_s, rel, outcome) => outcomes.push(`${outcome} ${rel}`) });
    expect(st.rejected.map((r) => r.rel)).toEqual(["example.com/lib/@v/v1.1.0.zip"]);
    expect(st.rejected[0]!.reason).toContain("checksum mismatch");
    expect(existsSync(join(store.dir, "example.com/lib/@v/v1.1.0.zip"))).toBe(false);
    for (const f of ["example.com/dep/@v/v1.0.0.zip", "example.com/!upper/!case/@v/v1.0.0.zip", "example.com/lib/@v/v1.1.0.mod", "example.com/lib/@v/v1.1.0.info"]) {
      expect(existsSync(join(store.dir, f)), f).toBe(true);
    }
    expect(outcomes).toContain("skipped example.com/dep/@v/v1.0.0.zip.partial");
    expect(outcomes).toContain("skipped example.com/dep/@v/v1.0.0.mod.tmp123");
    expect(outcomes.some((o) => o.startsWith("skipped") && o.endsWith(".lock"))).toBe(true);
    expect(outcomes.some((o) => o.startsWith("skipped") && o.endsWith(".ziphash"))).toBe(true);
    expect(st.imported).toBe(8); // 3 versions x (.info .mod .zip) - the rejected zip
    expect(st.unverified).toBe(0);
    // Again: everything already there is skipped.
    const again = await importTree({ src, store, goSum });
    expect(again.imported).toBe(0);
    expect(again.rejected.length).toBe(1);
  });
});

let n = 0;

/** A store and a checker for the test database (or another URL / key), as `gostash mod import` makes them. */
function checked(o: { url?: string; verifier?: Verifier | null } = {}) {
  const dir = join(t.path, `store${++n}`);
  const cfg: ModProxyConfig = {
    dir,
    upstreams: parseUpstreams(up.url),
    sumdbs: [{ name: db.name, url: o.url ?? db.url }],
    listTtlMs: 60_000,
    swrMs: 0,
    notFoundTtlMs: 60_000,
    timeoutMs: 5_000,
    retries: 0,
    offline: false,
  };
  const store = new ModStore(dir);
  const verifier = o.verifier === undefined ? parseVerifierKey(db.vkey) : o.verifier;
  return { store, sumdb: createImportSumdb({ cfg, store, verifier, metrics: new Metrics(), logger: createLogger({}) }) };
}

/** A fresh copy of the download cache to import. */
function source(): string {
  const src = join(t.path, `src${++n}`);
  cpSync(dl, src, { recursive: true });
  return src;
}

function lookupsAsked(counts: Record<string, number>, module: string): number {
  return Object.entries(counts)
    .filter(([p]) => p.startsWith(`/lookup/${module}@`))
    .reduce((a, [, c]) => a + c, 0);
}

/** A server in front of the test database whose answers `tamper` may change (the signed tree note stays the database's own). */
function inFrontOfDb(tamper: (path: string, body: Uint8Array) => Uint8Array | string): ReturnType<typeof Bun.serve> {
  return Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      const res = await fetch(`${db.url}${path}`);
      return new Response(tamper(path, new Uint8Array(await res.arrayBuffer())), { status: res.status });
    },
  });
}

describe("importTree against the checksum database (no go.sum)", () => {
  test("a correct download cache is verified through the test database's signed tree and tiles", async () => {
    const { store, sumdb } = checked();
    const st = await importTree({ src: source(), store, sumdb });
    expect(st.rejected).toEqual([]);
    expect(st.sumdbVerified).toBe(6); // 3 versions x (.zip, .mod)
    expect(st.unverified).toBe(0);
    expect(st.imported).toBe(9);
    const counts = await db.counts();
    expect(lookupsAsked(counts, "example.com/lib")).toBeGreaterThan(0);
    expect(Object.keys(counts).some((p) => p.startsWith("/tile/8/0/"))).toBe(true);
    // The answers are kept in the store for the proxy's clients.
    expect(existsSync(join(store.dir, `sumdb/${db.name}/lookup/example.com/lib@v1.1.0`))).toBe(true);
  });

  test("a tampered zip is rejected with the database's hash as the reason", async () => {
    const src = source();
    const zipPath = join(src, "example.com/lib/@v/v1.1.0.zip");
    const zip = readFileSync(zipPath);
    zip.write("dep.Twice(23)", zip.indexOf("dep.Twice(21)"));
    writeFileSync(zipPath, zip);
    const { store, sumdb } = checked();
    const st = await importTree({ src, store, sumdb });
    expect(st.rejected.map((r) => r.rel)).toEqual(["example.com/lib/@v/v1.1.0.zip"]);
    const want = sums.find((s) => s.Path === "example.com/lib")!.Sum;
    expect(st.rejected[0]!.reason).toBe(`checksum mismatch: example.com/lib v1.1.0: file has ${await hashZip(zip)}, checksum database ${db.name} has ${want}`);
    expect(existsSync(join(store.dir, "example.com/lib/@v/v1.1.0.zip"))).toBe(false);
    expect(st.sumdbVerified).toBe(5);
  });

  test("a module the database does not know is rejected unless --allow-unverified", async () => {
    const src = join(t.path, `unknown${++n}`);
    writeModule(src, { path: "example.com/unknown", version: "v1.0.0", files: { "u.go": "package unknown\n" } });
    const a = checked();
    const st = await importTree({ src, store: a.store, sumdb: a.sumdb });
    expect(st.rejected.map((r) => r.rel).sort()).toEqual(["example.com/unknown/@v/v1.0.0.mod", "example.com/unknown/@v/v1.0.0.zip"]);
    expect(st.rejected[0]!.reason).toMatch(new RegExp(`^not in checksum database ${db.name.replace(".", "\\.")} \\(.+\\); --allow-unverified imports it anyway$`));
    expect(st.imported).toBe(1); // the .info
    const b = checked();
    const ok = await importTree({ src, store: b.store, sumdb: b.sumdb, allowUnverified: true });
    expect(ok.rejected).toEqual([]);
    expect(ok.imported).toBe(3);
    expect(ok.unverified).toBe(2);
    expect(ok.unverifiedWhy).toEqual({ [`not in checksum database ${db.name}`]: 2 });
  });

  test("an unreachable database rejects (or, allowed, imports unverified); private paths are never looked up", async () => {
    const a = checked({ url: "http://127.0.0.1:1" });
    const st = await importTree({ src: source(), store: a.store, sumdb: a.sumdb });
    expect(st.rejected.length).toBe(6);
    expect(st.rejected[0]!.reason).toContain(`checksum database ${db.name} could not be asked (`);
    const b = checked({ url: "http://127.0.0.1:1" });
    const ok = await importTree({ src: source(), store: b.store, sumdb: b.sumdb, allowUnverified: true, noSumdb: new PrefixPatterns("example.com/Upper") });
    expect(ok.rejected).toEqual([]);
    expect(ok.unverifiedWhy).toEqual({ [`checksum database ${db.name} could not be asked`]: 4, "private path, not looked up": 2 });

    // With the database up: the private module is imported unverified and its name never reaches the database.
    const src = join(t.path, `private${++n}`);
    writeModule(src, { path: "example.com/secret/thing", version: "v1.0.0", files: { "s.go": "package thing\n" } });
    const c = checked();
    const pv = await importTree({ src, store: c.store, sumdb: c.sumdb, noSumdb: new PrefixPatterns("example.com/secret") });
    expect(pv.rejected).toEqual([]);
    expect(pv.unverifiedWhy).toEqual({ "private path, not looked up": 2 });
    expect(Object.keys(await db.counts()).some((p) => p.includes("secret"))).toBe(false);
  });

  test("a database that keeps failing is not asked again for a while: the import ends quickly", async () => {
    const src = join(t.path, `down${++n}`);
    for (let i = 0; i < 30; i++) writeModule(src, { path: `example.com/down/m${i}`, version: "v1.0.0", files: { "m.go": `package m${i}\n` } });
    let asked = 0;
    const down = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => {
        asked++;
        return new Response("overloaded\n", { status: 503 });
      },
    });
    try {
      const a = checked({ url: `http://127.0.0.1:${down.port}` });
      const st = await importTree({ src, store: a.store, sumdb: a.sumdb, allowUnverified: true });
      expect(st.rejected).toEqual([]);
      expect(st.unverified).toBe(60);
      expect(asked).toBeLessThan(30);
      const b = checked({ url: `http://127.0.0.1:${down.port}` });
      const rej = await importTree({ src, store: b.store, sumdb: b.sumdb });
      expect(rej.rejected.length).toBe(60);
      expect(rej.rejected.at(-1)!.reason).toContain("could not be asked (not asked: it failed 5 times in a row (last: HTTP 502");
    } finally {
      down.stop(true);
    }
  });

  test("an answer signed by another key is rejected even with --allow-unverified; no key at all is 'could not be asked'", async () => {
    const { publicKey } = generateKeyPairSync("ed25519");
    const pub = Buffer.concat([Buffer.of(1), Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url")]);
    const hash = createHash("sha256").update(`${db.name}\n`).update(pub).digest().readUInt32BE(0);
    const other = parseVerifierKey(`${db.name}+${hash.toString(16).padStart(8, "0")}+${pub.toString("base64")}`);
    const a = checked({ verifier: other });
    const st = await importTree({ src: source(), store: a.store, sumdb: a.sumdb, allowUnverified: true });
    expect(st.rejected.length).toBe(6);
    expect(st.rejected[0]!.reason).toContain(`answer for example.com/!upper/!case@v1.0.0 does not verify: note has no signature by ${db.name}+`.replace("!upper/!case", "Upper/Case"));
    const b = checked({ verifier: null });
    const none = await importTree({ src: source(), store: b.store, sumdb: b.sumdb });
    expect(none.rejected[0]!.reason).toContain(`no verifier key for ${db.name}: give --sumdb-key ${db.name}+HASH+KEY`);
  });

  test("a lying database (or anyone in between) is caught by the proof: changed record lines, changed tiles", async () => {
    const src = source();
    const zipPath = join(src, "example.com/lib/@v/v1.1.0.zip");
    const zip = readFileSync(zipPath);
    zip.write("dep.Twice(24)", zip.indexOf("dep.Twice(21)"));
    writeFileSync(zipPath, zip);
    const forged = await hashZip(zip);
    const real = sums.find((s) => s.Path === "example.com/lib")!.Sum;
    let mode: "record" | "tile" = "record";
    // The signed tree note stays valid, only the unsigned parts change.
    const mitm = inFrontOfDb((path, body) => {
      if (mode === "record" && path === "/lookup/example.com/lib@v1.1.0") return new TextDecoder().decode(body).replace(real, forged);
      if (mode === "tile" && path.startsWith("/tile/8/0/") && body.length >= 32) body[body.length - 1]! ^= 1;
      return body;
    });
    try {
      const a = checked({ url: `http://127.0.0.1:${mitm.port}` });
      const st = await importTree({ src, store: a.store, sumdb: a.sumdb, allowUnverified: true });
      const lib = st.rejected.filter((r) => r.rel.startsWith("example.com/lib/"));
      expect(lib.map((r) => r.rel).sort()).toEqual(["example.com/lib/@v/v1.1.0.mod", "example.com/lib/@v/v1.1.0.zip"]);
      expect(lib[0]!.reason).toContain("does not verify: cannot authenticate the record");
      expect(existsSync(join(a.store.dir, "example.com/lib/@v/v1.1.0.zip"))).toBe(false);

      mode = "tile";
      const b = checked({ url: `http://127.0.0.1:${mitm.port}` });
      const st2 = await importTree({ src: source(), store: b.store, sumdb: b.sumdb, allowUnverified: true });
      expect(st2.rejected.length).toBe(6);
      expect(st2.rejected[0]!.reason).toContain("downloaded inconsistent tile");
    } finally {
      mitm.stop(true);
    }
  });

  test("hundreds of modules: proofs through two tile levels while the log grows", async () => {
    // 600 new records: level-0 tiles 000 and 001 fill up and are proven through the level-1 tile.
    const src = join(t.path, `many${++n}`);
    for (let i = 0; i < 600; i++) {
      const m = { path: `example.com/gen/m${i}`, version: "v1.0.0", files: { "m.go": `package m${i}\n` } };
      writeModule(src, m);
      writeModule(join(t.path, "up"), m); // what the test database signs
    }
    const { store, sumdb } = checked();
    const st = await importTree({ src, store, sumdb });
    expect(st.rejected).toEqual([]);
    expect(st.sumdbVerified).toBe(1200);
    const tiles = Object.keys(await db.counts()).filter((p) => p.startsWith("/tile/"));
    expect(tiles.some((p) => p.startsWith("/tile/8/1/"))).toBe(true);
    expect(tiles).toContain("/tile/8/0/001");

    // A changed full tile (not one at the top of the tree) is caught through its parent tile.
    const few = join(t.path, `few${++n}`);
    for (let i = 0; i < 3; i++) cpSync(join(src, `example.com/gen/m${i}`), join(few, `example.com/gen/m${i}`), { recursive: true });
    const mitm = inFrontOfDb((path, body) => {
      if (path === "/tile/8/0/000") body[0]! ^= 1;
      return body;
    });
    try {
      const b = checked({ url: `http://127.0.0.1:${mitm.port}` });
      const bad = await importTree({ src: few, store: b.store, sumdb: b.sumdb });
      expect(bad.rejected.length).toBe(6);
      expect(bad.rejected[0]!.reason).toContain("downloaded inconsistent tile tile/8/0/000");
    } finally {
      mitm.stop(true);
    }
  }, 120_000);

  test("a $GOMODCACHE's own sumdb files verify its modules with the database unreachable", async () => {
    // A cache filled with the database on: it keeps the lookups and tiles the go command checked.
    const home = join(t.path, "home-sumdb");
    const e = goEnv({ gocache: join(t.path, "gocache"), home, extra: { GOPROXY: up.url, GOSUMDB: `${db.vkey} ${db.url}`, GONOSUMDB: "", GOPRIVATE: "", GOFLAGS: "-mod=mod" } });
    const r = await go(["mod", "download", "example.com/lib@v1.1.0", "example.com/dep@v1.0.0", "example.com/Upper/Case@v1.0.0"], t.path, e, 240_000);
    expect(r.code, r.stderr).toBe(0);
    const cache = join(home, "gopath", "pkg", "mod");
    expect(existsSync(join(cache, "cache/download/sumdb", db.name, "lookup/example.com/lib@v1.1.0"))).toBe(true);
    const { store, sumdb } = checked({ url: "http://127.0.0.1:1" });
    const st = await importTree({ src: cache, store, sumdb });
    expect(st.rejected).toEqual([]);
    expect(st.sumdbVerified).toBe(6);
  }, 300_000);
});

describe("signed notes and keys", () => {
  test("the built-in sum.golang.org key parses (its hash matches); malformed keys are refused", () => {
    expect(parseVerifierKey(KNOWN_KEYS["sum.golang.org"]!).name).toBe("sum.golang.org");
    expect(verifierFor("sum.golang.org", undefined)?.hash).toBe(0x033de0ae);
    expect(verifierFor("sum.test", "sum.golang.org")).toBeNull();
    expect(verifierFor(db.name, `sum.golang.org,${db.vkey} ${db.url}`)?.name).toBe(db.name);
    for (const bad of ["", "name", "sum.golang.org+033de0ae+AAAA", "sum.golang.org+133de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8", "a b+033de0ae+Ac4z"]) {
      expect(() => parseVerifierKey(bad), bad).toThrow(NoteError);
    }
  });

  test("a note from the test database opens with its key; a changed text or signature does not", async () => {
    const latest = new Uint8Array(await (await fetch(`${db.url}/latest`)).arrayBuffer());
    const v = parseVerifierKey(db.vkey);
    expect(openNote(latest, v)).toMatch(/^go\.sum database tree\n\d+\n[A-Za-z0-9+/=]{44}\n$/);
    const changed = Uint8Array.from(latest);
    changed[25] = changed[25] === 0x31 ? 0x32 : 0x31; // a digit of the tree size
    expect(() => openNote(changed, v)).toThrow("invalid signature");
    expect(() => openNote(new TextEncoder().encode("go.sum database tree\n1\nAAAA\n\n"), v)).toThrow("malformed note");
  });
});
