// `gostash mod import` without --go-sum, the compiled binary against the
// local signed test checksum database: the flags (--sumdb NAME=URL,
// --sumdb-key, --allow-unverified, --private, GONOSUMDB, --offline) and
// the report on stderr. Plus, when reachable, the real sum.golang.org (found
// through proxy.golang.org, as the proxy does) with its built-in key: a log
// of tens of millions of records, four tile levels.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { BIN, run, tempDir } from "../helpers/env.ts";
import { go, goEnv } from "../helpers/go.ts";
import { publicProxyReachable } from "../modproxy/client.ts";
import { startSumdb, writeModule, type Sumdb } from "../modproxy/helpers.ts";

let root: ReturnType<typeof tempDir>;
let db: Sumdb;
let src: string;

beforeAll(async () => {
  root = tempDir("gostash-import-verify-e2e-");
  const known = join(root.path, "known"); // what the database signs
  src = join(root.path, "src");
  for (const dir of [known, src]) {
    writeModule(dir, { path: "example.com/a", version: "v1.0.0", files: { "a.go": "package a\n" } });
    writeModule(dir, { path: "example.com/b", version: "v1.2.3", files: { "b.go": "package b\n" } });
  }
  // In the source only: unknown to the database, and a private one.
  writeModule(src, { path: "example.com/unknown", version: "v0.1.0", files: { "u.go": "package unknown\n" } });
  writeModule(src, { path: "corp.example.com/secret", version: "v1.0.0", files: { "s.go": "package secret\n" } });
  db = await startSumdb(known);
}, 240_000);

afterAll(() => {
  db?.stop();
  root?.cleanup();
});

function importWith(env: Record<string, string>, cache: string, ...flags: string[]) {
  return run([BIN, "mod", "import", src, "--cache-dir", cache, "--sumdb", `${db.name}=${db.url}`, "--upstream", "off", ...flags], {
    env: { GOSTASH_SUMDB_KEY: db.vkey, GONOSUMDB: "", GOPRIVATE: "", GOSTASH_PRIVATE: "", GOSUMDB: "", ...env },
    timeoutMs: 60_000,
  });
}

function mkImport(cache: string, ...flags: string[]) {
  return importWith({ GONOSUMDB: "corp.example.com" }, cache, ...flags);
}

describe("gostash mod import with the checksum database", () => {
  test("known modules verified, the unknown one rejected with its reason, the private one never looked up", async () => {
    const cache = join(root.path, "c1");
    const r = await mkImport(cache);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/imported 10 files .*, rejected 2, 4 \.zip\/\.mod verified by checksum database sum\.test, 2 \.zip\/\.mod unverified \(2 private path, not looked up\)/);
    expect(r.stderr).toContain("rejected example.com/unknown/@v/v0.1.0.zip: not in checksum database sum.test (");
    expect(r.stderr).toContain("--allow-unverified imports it anyway");
    expect(existsSync(join(cache, "modproxy/example.com/a/@v/v1.0.0.zip"))).toBe(true);
    expect(existsSync(join(cache, "modproxy/example.com/unknown/@v/v0.1.0.zip"))).toBe(false);
    const asked = Object.keys(await db.counts());
    expect(asked.some((p) => p.includes("secret"))).toBe(false);
    expect(asked).toContain("/lookup/example.com/unknown@v0.1.0");
  }, 120_000);

  test("--allow-unverified imports the unknown module; --offline imports without asking and says so", async () => {
    const r = await mkImport(join(root.path, "c2"), "--allow-unverified");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/rejected 0, 4 \.zip\/\.mod verified by checksum database sum\.test, 4 \.zip\/\.mod unverified \(2 private path, not looked up, 2 not in checksum database sum\.test\)/);
    const off = await mkImport(join(root.path, "c3"), "--offline");
    expect(off.code, off.stderr).toBe(0);
    expect(off.stderr).toContain("rejected 0, 8 .zip/.mod unverified (8 no checksum database: --offline)");
  }, 120_000);

  test("--private, GOSTASH_PRIVATE or GOPRIVATE alone keep the private path from the database as GONOSUMDB does; a bad glob is a usage error", async () => {
    const ways: [Record<string, string>, string[]][] = [
      [{}, ["--private", "corp.example.com"]],
      [{ GOSTASH_PRIVATE: "corp.example.com" }, []],
      [{ GOPRIVATE: "corp.example.com" }, []],
    ];
    for (const [i, [env, flags]] of ways.entries()) {
      const r = await importWith(env, join(root.path, `c-private${i}`), ...flags);
      expect(r.code, r.stderr).toBe(1); // example.com/unknown is still rejected
      expect(r.stderr).toContain("4 .zip/.mod verified by checksum database sum.test, 2 .zip/.mod unverified (2 private path, not looked up)");
    }
    expect(Object.keys(await db.counts()).some((p) => p.includes("secret"))).toBe(false);
    const bad = await importWith({}, join(root.path, "c-private-bad"), "--private", "corp.example.com,[");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('config: --private: bad glob "[": unterminated [');
    const badEnv = await importWith({ GONOSUMDB: "corp.example.com/[z-a]" }, join(root.path, "c-private-bad2"));
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toContain('config: --private/GONOSUMDB/GOPRIVATE: bad glob "corp.example.com/[z-a]": range z-a is backwards');
  }, 120_000);

  test("a database without a known key: the files are rejected with the flag to give", async () => {
    const r = await run([BIN, "mod", "import", src, "--cache-dir", join(root.path, "c4"), "--sumdb", `${db.name}=${db.url}`, "--upstream", "off"], {
      env: { GOSTASH_SUMDB_KEY: "", GONOSUMDB: "", GOPRIVATE: "", GOSUMDB: "" },
      timeoutMs: 60_000,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`could not be asked (no verifier key for ${db.name}: give --sumdb-key ${db.name}+HASH+KEY)`);
    const bad = await run([BIN, "mod", "import", src, "--cache-dir", join(root.path, "c5"), "--sumdb", `${db.name}=${db.url}`, "--sumdb-key", `${db.name}+zz+AAAA`], { timeoutMs: 60_000 });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("config: --sumdb-key: malformed verifier key");
  }, 120_000);
});

const publicOK = await publicProxyReachable();
if (!publicOK) console.error("mod import e2e: SKIPPED the public test: https://proxy.golang.org (and its /sumdb/sum.golang.org) is not reachable from here");

describe("against the public sum.golang.org", () => {
  test.skipIf(!publicOK)("a module cache filled with GOSUMDB=off is verified by sum.golang.org with the built-in key", async () => {
    const home = join(root.path, "home-public");
    const e = goEnv({ gocache: join(root.path, "gocache"), home, extra: { GOPROXY: "https://proxy.golang.org", GOSUMDB: "off", GOFLAGS: "-mod=mod" } });
    const dl = await go(["mod", "download", "golang.org/x/mod@v0.30.0"], root.path, e, 120_000);
    expect(dl.code, dl.stderr).toBe(0);
    const cache = join(root.path, "c-public");
    const r = await run([BIN, "mod", "import", join(home, "gopath", "pkg", "mod"), "--cache-dir", cache], {
      env: { GOSTASH_SUMDB_KEY: "", GOSUMDB: "", GONOSUMDB: "", GOPRIVATE: "", GOSTASH_UPSTREAM: "", GOCACHE_SUMDB: "" },
      timeoutMs: 120_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("rejected 0, 2 .zip/.mod verified by checksum database sum.golang.org");
    expect(existsSync(join(cache, "modproxy/sumdb/sum.golang.org/lookup/golang.org/x/mod@v0.30.0"))).toBe(true);
  }, 300_000);
});
