// A full or read-only cache file system during a real build: the build
// succeeds, one warning is shown, and nothing partial is ever served.
// Uses a real tmpfs (the tests run as root, in CI too); if mounting is not
// allowed the test fails loudly rather than skipping.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createDiskStore } from "../../src/store/disk.ts";
import { BIN, tempDir } from "../helpers/env.ts";
import { go, goEnv, writeDemoModule } from "../helpers/go.ts";

const tmp = tempDir("gostash-diskfull-");
const mounts: string[] = [];
const sha = (d: string | Uint8Array) => createHash("sha256").update(d).digest("hex");

function mountTmpfs(name: string, opts: string): string {
  const dir = join(tmp.path, name);
  mkdirSync(dir, { recursive: true });
  const p = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir], { stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`cannot mount a tmpfs for the disk-full test: ${p.stderr.toString()}`);
  mounts.push(dir);
  return dir;
}

beforeAll(() => writeDemoModule(join(tmp.path, "demo")));
afterAll(() => {
  for (const m of mounts.reverse()) Bun.spawnSync(["umount", "-l", m]);
  tmp.cleanup();
});

/** Every entry in the cache must point at an output of exactly its size and hash. */
function checkNoPartialEntries(dir: string): number {
  let n = 0;
  for (const sub of readdirSync(dir).filter((d) => /^[0-9a-f]{2}$/.test(d))) {
    for (const f of readdirSync(join(dir, sub)).filter((f) => f.endsWith("-a"))) {
      const line = readFileSync(join(dir, sub, f), "latin1");
      const [, , out, size] = line.trim().split(/ +/);
      const data = join(dir, out!.slice(0, 2), `${out}-d`);
      if (!existsSync(data)) continue; // a miss, not a wrong hit
      expect(statSync(data).size).toBe(Number(size));
      expect(sha(readFileSync(data))).toBe(out!);
      n++;
    }
  }
  return n;
}

describe("disk trouble", () => {
  test("store: a put that fills the disk mid-body spills to the overflow dir and is served from there", () => {
    const dir = mountTmpfs("small", "size=1m");
    const troubles: string[] = [];
    const s = createDiskStore({ dir, overflowDir: join(tmp.path, "overflow"), onTrouble: (e) => troubles.push((e as NodeJS.ErrnoException).code!) });
    const body = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
    const a = sha("big-on-small");
    const w = s.put(a, sha(body), body.length);
    for (let off = 0; off < body.length; off += 64 * 1024) w.write(body.subarray(off, off + 64 * 1024));
    const hit = w.commit();
    expect(troubles).toContain("ENOSPC");
    expect(hit.diskPath.startsWith(join(tmp.path, "overflow"))).toBe(true);
    expect(sha(readFileSync(hit.diskPath))).toBe(sha(body));
    expect(s.get(a)).toBeNull(); // not cached, so never a wrong hit
    // the cache directory holds no leftover temp file
    expect([...new Bun.Glob("**/*.tmp").scanSync(dir)]).toEqual([]);
    // small outputs still fit and are cached
    const small = s.put(sha("small"), sha("tiny"), 4);
    small.write(Buffer.from("tiny"));
    expect(small.commit().diskPath.startsWith(dir)).toBe(true);
    expect(s.get(sha("small"))).not.toBeNull();
  });

  test("store: a whole output landed from a pack that fills the disk mid-write spills to the overflow dir; no cut file is left", () => {
    const dir = mountTmpfs("small-whole", "size=1m");
    const troubles: string[] = [];
    const s = createDiskStore({ dir, overflowDir: join(tmp.path, "overflow-whole"), onTrouble: (e) => troubles.push((e as NodeJS.ErrnoException).code!) });
    const body = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 241);
    const a = sha("whole-big-on-small");
    const hit = s.putWhole(a, sha(body), body, 5n);
    expect(troubles).toContain("ENOSPC");
    expect(hit.diskPath.startsWith(join(tmp.path, "overflow-whole"))).toBe(true);
    expect(sha(readFileSync(hit.diskPath))).toBe(sha(body));
    expect(s.get(a)).toBeNull();
    expect(existsSync(join(dir, sha(body).slice(0, 2), `${sha(body)}-d`))).toBe(false);
    expect([...new Bun.Glob("**/*.tmp").scanSync(dir)]).toEqual([]);
  });

  test("store: a read-only cache directory passes outputs through, each write in a file of its own; the first one sweeps", async () => {
    const dir = mountTmpfs("ro", "ro,size=1m");
    const overflowDir = join(tmp.path, "overflow-ro");
    // Left by a gostash that is gone, two hours ago (store/disk-overflow.ts).
    mkdirSync(overflowDir);
    const gone = Bun.spawn(["true"]);
    await gone.exited;
    const stale = join(overflowDir, `${sha("stale")}-d.${gone.pid}.0.1`);
    writeFileSync(stale, "stale");
    utimesSync(stale, new Date(Date.now() - 2 * 3600_000), new Date(Date.now() - 2 * 3600_000));
    const troubles: string[] = [];
    const s = createDiskStore({ dir, overflowDir, onTrouble: (e) => troubles.push((e as NodeJS.ErrnoException).code!) });
    const put = (action: string) => {
      const w = s.put(sha(action), sha("read only"), 9);
      w.write(Buffer.from("read only"));
      return w.commit().diskPath;
    };
    const [first, second] = [put("ro"), put("ro again")];
    expect(troubles[0]).toBe("EROFS");
    expect(readFileSync(first, "utf8")).toBe("read only");
    expect(s.get(sha("ro"))).toBeNull();
    // The same output twice: two files, named by this process, so removing one never takes the other's.
    expect(second).not.toBe(first);
    expect(readFileSync(second, "utf8")).toBe("read only");
    expect(first).toMatch(new RegExp(`/${sha("read only")}-d\\.${process.pid}\\.\\d+\\.\\d+$`));
    expect(existsSync(stale)).toBe(false);
  });

  test("go build, vet and list -export on a cache file system filled to the brim succeed with one warning", async () => {
    const cacheDir = mountTmpfs("brim", "size=16m");
    // fill it to the brim but for a few MiB: the build fills the rest
    writeFileSync(join(cacheDir, "ballast"), new Uint8Array(12 * 1024 * 1024));
    const home = join(tmp.path, "home");
    // The overflow directory goes under TMPDIR: this test's own.
    const tmpdir = join(tmp.path, "tmpdir");
    mkdirSync(tmpdir);
    const env = { ...goEnv({ gocache: join(tmp.path, "gocache"), home, prog: `${BIN} --cache-dir=${cacheDir} --metrics` }), TMPDIR: tmpdir };
    const mod = join(tmp.path, "demo");
    // Every command recompiles what did not fit, so keep the list short.
    const out = join(tmp.path, "demo-bin");
    const b = await go(["build", "-o", out, "./cmd/demo"], mod, env);
    expect(b.code).toBe(0);
    expect(b.stderr.match(/cannot take writes \(ENOSPC/g)?.length).toBe(1);
    expect(Bun.spawnSync([out]).stdout.toString()).toBe('{"greeting":"hello, WORLD"} 3\n');
    const v = await go(["vet", "./greet", "./mathx"], mod, env);
    expect(v.code).toBe(0);
    const l = await go(["list", "-export", "-f", "{{.Export}}", "./greet", "fmt"], mod, env);
    expect(l.code).toBe(0);
    // go/packages opens these once go list has exited: they are still there.
    const exports = l.stdout.trim().split("\n");
    for (const f of exports) expect(statSync(f).size).toBeGreaterThan(0);
    expect(exports.filter((f) => f.startsWith(join(tmpdir, `gostash-overflow-${process.getuid!()}`))).length).toBeGreaterThan(0);
    // What fit before the disk filled is stored, whole and correct.
    expect(checkNoPartialEntries(cacheDir)).toBeGreaterThan(0);
  }, 600_000);
});
