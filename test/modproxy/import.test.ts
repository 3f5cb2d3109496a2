// mod import's parts: dirhash h1: against the go command's own go.sum
// hashes (a real $GOMODCACHE filled by `go mod download` from a local
// upstream), and importTree over that cache: junk skipped, a tampered zip
// rejected, everything else imported once.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hash1, hashGoMod, hashZip } from "../../src/modproxy/dirhash.ts";
import { importTree, parseGoSum } from "../../src/modproxy/import.ts";
import { ModStore } from "../../src/modproxy/store.ts";
import { tempDir } from "../helpers/env.ts";
import { go, goEnv } from "../helpers/go.ts";
import { startUpstream, writeTestModules, type Upstream } from "./helpers.ts";

let t: ReturnType<typeof tempDir>;
let up: Upstream;
let dl: string;
let sums: { Path: string; Version: string; Sum: string; GoModSum: string }[] = [];

beforeAll(async () => {
  t = tempDir("gostash-import-unit-");
  writeTestModules(join(t.path, "up"));
  up = startUpstream(join(t.path, "up"));
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
  t?.cleanup();
});

describe("dirhash", () => {
  test("h1: of zips and go.mod files equals the go command's", () => {
    expect(sums.length).toBe(3);
    for (const s of sums) {
      const base = join(dl, s.Path.replace(/[A-Z]/g, (c) => `!${c.toLowerCase()}`), "@v", s.Version);
      expect(hashZip(readFileSync(`${base}.zip`))).toBe(s.Sum);
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
