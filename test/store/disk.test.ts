// The local store on a real temporary directory.
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createDiskStore, ENTRY_SIZE, formatEntry, parseEntry } from "../../src/store/disk.ts";
import { tempDir } from "../helpers/env.ts";

const tmp = tempDir("gostash-disk-");
afterAll(() => tmp.cleanup());
let n = 0;
const fresh = () => join(tmp.path, `s${++n}`);
const sha = (d: string | Uint8Array) => createHash("sha256").update(d).digest("hex");

function put(store: ReturnType<typeof createDiskStore>, name: string, body: string) {
  const a = sha(`a:${name}`);
  const o = sha(body);
  const w = store.put(a, o, body.length);
  w.write(Buffer.from(body));
  return { a, o, hit: w.commit() };
}

function allFiles(dir: string): string[] {
  return [...new Bun.Glob("**/*").scanSync({ cwd: dir, dot: true })].sort();
}

describe("format", () => {
  test("entries are exactly Go's 175-byte line", () => {
    const e = formatEntry("ab".repeat(32), "cd".repeat(32), 1234, 1700000000123456789n);
    expect(e.length).toBe(ENTRY_SIZE);
    expect(e).toBe(`v1 ${"ab".repeat(32)} ${"cd".repeat(32)} ${"1234".padStart(20)} ${"1700000000123456789".padStart(20)}\n`);
    expect(parseEntry(Buffer.from(e), e.length, "ab".repeat(32))).toEqual({ outputID: "cd".repeat(32), size: 1234, timeNanos: 1700000000123456789n });
  });

  test("invalid entries are misses", () => {
    const a = "ab".repeat(32);
    const good = formatEntry(a, "cd".repeat(32), 1, 1n);
    expect(parseEntry(Buffer.from(good), good.length, "ef".repeat(32))).toBeNull(); // another action
    expect(parseEntry(Buffer.from(good), good.length - 1, a)).toBeNull(); // truncated
    const bad = good.replace("v1", "v2");
    expect(parseEntry(Buffer.from(bad), bad.length, a)).toBeNull();
    const neg = formatEntry(a, "cd".repeat(32), 1, 1n).replace("                   1\n", "                  -1\n");
    expect(parseEntry(Buffer.from(neg), neg.length, a)).toBeNull();
  });
});

describe("get and put", () => {
  test("put lands the output and then the entry; get returns the DiskPath", () => {
    const dir = fresh();
    const s = createDiskStore({ dir });
    const { a, o, hit } = put(s, "x", "output bytes");
    expect(hit.diskPath).toBe(join(dir, o.slice(0, 2), `${o}-d`));
    expect(readFileSync(hit.diskPath, "utf8")).toBe("output bytes");
    expect(readFileSync(join(dir, a.slice(0, 2), `${a}-a`), "latin1")).toMatch(new RegExp(`^v1 ${a} ${o} +12 +\\d+\\n$`));
    expect(s.get(a)).toEqual(hit);
    expect(allFiles(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  test("an aborted write leaves nothing behind and is never a hit", () => {
    const dir = fresh();
    const s = createDiskStore({ dir });
    const a = sha("aborted");
    const w = s.put(a, sha("whole body"), 10);
    w.write(Buffer.from("whole"));
    w.abort();
    expect(s.get(a)).toBeNull();
    expect(allFiles(dir)).toEqual([]); // files only: no temp file, no entry
  });

  test("a short write cannot be committed", () => {
    const s = createDiskStore({ dir: fresh() });
    const a = sha("short");
    const w = s.put(a, sha("0123456789"), 10);
    w.write(Buffer.from("01234"));
    expect(() => w.commit()).toThrow(/wrote 5 bytes, expected 10/);
    expect(s.get(a)).toBeNull();
  });

  test("a writer killed mid-write (temp file left, no entry) is not a hit", () => {
    const dir = fresh();
    const s = createDiskStore({ dir });
    const a = sha("killed");
    const w = s.put(a, sha("data"), 4);
    w.write(Buffer.from("da")); // the process 'dies' here: nothing renamed
    expect(s.get(a)).toBeNull();
    expect(allFiles(dir).some((f) => f.endsWith(".tmp"))).toBe(true);
  });

  test("an entry whose output is missing, truncated or replaced is a miss", () => {
    const dir = fresh();
    const s = createDiskStore({ dir });
    const { a, hit } = put(s, "y", "0123456789");
    writeFileSync(hit.diskPath, "01234");
    expect(s.get(a)).toBeNull();
    writeFileSync(hit.diskPath, "0123456789");
    expect(s.get(a)).not.toBeNull();
    Bun.spawnSync(["rm", hit.diskPath]);
    expect(s.get(a)).toBeNull();
  });

  test("Go 1.26 executable entries (a directory holding one file) are served from the inner file", () => {
    const dir = fresh();
    const s = createDiskStore({ dir });
    const body = "#!fake binary";
    const a = sha("exe");
    const o = sha(body);
    mkdirSync(join(dir, o.slice(0, 2), `${o}-d`), { recursive: true });
    writeFileSync(join(dir, o.slice(0, 2), `${o}-d`, "prog"), body);
    mkdirSync(join(dir, a.slice(0, 2)), { recursive: true });
    writeFileSync(join(dir, a.slice(0, 2), `${a}-a`), formatEntry(a, o, body.length, 5n));
    expect(s.get(a)?.diskPath).toBe(join(dir, o.slice(0, 2), `${o}-d`, "prog"));
  });

  test("a hit refreshes mtimes older than an hour, and leaves newer ones alone", () => {
    const dir = fresh();
    let now = Date.now();
    const s = createDiskStore({ dir, now: () => now });
    const { a, hit } = put(s, "z", "zz");
    const entry = join(dir, a.slice(0, 2), `${a}-a`);
    const old = new Date(now - 2 * 3600_000);
    utimesSync(entry, old, old);
    utimesSync(hit.diskPath, old, old);
    s.get(a);
    expect(Math.abs(statSync(entry).mtimeMs - now)).toBeLessThan(2000);
    expect(Math.abs(statSync(hit.diskPath).mtimeMs - now)).toBeLessThan(2000);
    const recent = new Date(now - 10 * 60_000);
    utimesSync(entry, recent, recent);
    s.get(a);
    expect(Math.abs(statSync(entry).mtimeMs - recent.getTime())).toBeLessThan(2000);
  });

  test("the cache directory is recreated if removed under a running store", () => {
    const dir = fresh();
    const s = createDiskStore({ dir });
    put(s, "before", "1");
    Bun.spawnSync(["rm", "-rf", dir]);
    const { a } = put(s, "before", "1");
    expect(s.get(a)).not.toBeNull();
  });

  test("its directory removed while an output streams in (go clean -cache under a daemon): answered from the overflow directory with every byte, never an error", () => {
    const dir = fresh();
    const overflowDir = join(fresh(), "overflow");
    const troubles: string[] = [];
    const s = createDiskStore({ dir, overflowDir, onTrouble: (e) => void troubles.push((e as NodeJS.ErrnoException).code ?? "") });
    const body = "x".repeat(100_000) + "y".repeat(50_000);
    const a = sha("a:removed mid-put");
    const w = s.put(a, sha(body), body.length);
    w.write(Buffer.from(body.slice(0, 100_000)));
    rmSync(dir, { recursive: true, force: true });
    w.write(Buffer.from(body.slice(100_000)));
    const out = w.commit();
    expect(out.diskPath.startsWith(overflowDir)).toBe(true);
    expect(readFileSync(out.diskPath, "utf8")).toBe(body);
    expect(troubles).toEqual(["ENOENT"]);
    expect(s.get(a)).toBeNull(); // no entry: a later get misses
  });

  test("a cache directory that is a symlink to a directory that is gone: puts pass through the overflow directory", () => {
    const root = fresh();
    const target = join(root, "target");
    mkdirSync(target, { recursive: true });
    const dir = join(root, "cache");
    symlinkSync(target, dir);
    rmSync(target, { recursive: true });
    const s = createDiskStore({ dir, overflowDir: join(root, "overflow") });
    const { hit } = put(s, "dangling", "some output");
    expect(hit.diskPath.startsWith(join(root, "overflow"))).toBe(true);
    expect(readFileSync(hit.diskPath, "utf8")).toBe("some output");
  });

  test("landing an output that is already there keeps the file and refreshes its mtime, as a hit does (a size-capped trim must not take it first)", () => {
    const dir = fresh();
    const s = createDiskStore({ dir });
    const body = Buffer.from("shared output");
    const first = s.putWhole(sha("a:one"), sha(body), body, 1n);
    const old = new Date(Date.now() - 3 * 3600_000);
    utimesSync(first.diskPath, old, old);
    const ino = statSync(first.diskPath).ino;
    const second = s.putWhole(sha("a:two"), sha(body), body, 2n);
    expect(second.diskPath).toBe(first.diskPath);
    expect(statSync(second.diskPath).ino).toBe(ino);
    expect(Date.now() - statSync(second.diskPath).mtimeMs).toBeLessThan(60_000);
  });
});

describe("trim", () => {
  test("removes entries unused for more than 5 days, once a day, like Go; keeps the rest", () => {
    const dir = fresh();
    let now = Date.now();
    const s = createDiskStore({ dir, now: () => now });
    const oldOne = put(s, "old", "old output");
    const newOne = put(s, "new", "new output");
    const sixDays = new Date(now - 6 * 86400_000 - 2 * 3600_000);
    for (const p of [join(dir, oldOne.a.slice(0, 2), `${oldOne.a}-a`), oldOne.hit.diskPath]) utimesSync(p, sixDays, sixDays);
    // a stale temp file from a dead writer
    const stale = join(dir, "00", "dead.1.1.tmp");
    mkdirSync(join(dir, "00"), { recursive: true });
    writeFileSync(stale, "partial");
    utimesSync(stale, sixDays, sixDays);

    const r = s.trim();
    expect(r.skipped).toBe(false);
    expect(r.removedFiles).toBe(3);
    expect(s.get(oldOne.a)).toBeNull();
    expect(s.get(newOne.a)).not.toBeNull();
    expect(existsSync(stale)).toBe(false);
    expect(Number(readFileSync(join(dir, "trim.txt"), "latin1"))).toBe(Math.floor(now / 1000));
    // not again within a day
    expect(s.trim().skipped).toBe(true);
    now += 25 * 3600_000;
    expect(s.trim().skipped).toBe(false);
  });

  test("a trim.txt written recently by Go means no trim", () => {
    const dir = fresh();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "trim.txt"), String(Math.floor(Date.now() / 1000) - 60));
    expect(createDiskStore({ dir }).trim().skipped).toBe(true);
  });

  test("--expiry shortens the age limit", () => {
    const dir = fresh();
    const now = Date.now();
    const s = createDiskStore({ dir, now: () => now, expiryMs: 3600_000 });
    const e = put(s, "e", "expires");
    const threeHours = new Date(now - 3 * 3600_000);
    for (const p of [join(dir, e.a.slice(0, 2), `${e.a}-a`), e.hit.diskPath]) utimesSync(p, threeHours, threeHours);
    s.trim();
    expect(s.get(e.a)).toBeNull();
  });

  test("the size cap evicts least recently used entries first, down to 90%", () => {
    const dir = fresh();
    let now = Date.now();
    const s = createDiskStore({ dir, now: () => now, maxSize: 10_000 });
    const items = [];
    for (let i = 0; i < 10; i++) {
      const it = put(s, `cap${i}`, String(i).repeat(1500));
      const t = new Date(now - 2 * 3600_000 - (10 - i) * 60_000); // item 0 is the oldest; none used within the last hour
      for (const p of [join(dir, it.a.slice(0, 2), `${it.a}-a`), it.hit.diskPath]) utimesSync(p, t, t);
      items.push(it);
    }
    const r = s.trim();
    expect(r.skipped).toBe(false);
    expect(r.keptBytes).toBeLessThanOrEqual(9_000);
    expect(s.get(items[0]!.a)).toBeNull();
    expect(s.get(items[9]!.a)).not.toBeNull();
    // under the cap now: the next run does not walk the directory again
    expect(s.trim().skipped).toBe(true);
    const total = readdirSync(dir)
      .filter((d) => /^[0-9a-f]{2}$/.test(d))
      .flatMap((d) => readdirSync(join(dir, d)).map((f) => statSync(join(dir, d, f)).size))
      .reduce((x, y) => x + y, 0);
    expect(total).toBeLessThanOrEqual(10_000);
  });

  test("the size cap never evicts what was used within the last hour (a go command may still read it), even over the cap", () => {
    const dir = fresh();
    const now = Date.now();
    const s = createDiskStore({ dir, now: () => now, maxSize: 10_000 });
    const at = (it: ReturnType<typeof put>, ago: number) => {
      const t = new Date(now - ago);
      for (const p of [join(dir, it.a.slice(0, 2), `${it.a}-a`), it.hit.diskPath]) utimesSync(p, t, t);
    };
    const old = put(s, "old", "o".repeat(3000));
    at(old, 3 * 3600_000);
    const recent = [0, 1, 2].map((i) => put(s, `recent${i}`, String(i).repeat(3000)));
    // Refreshed at most hourly on use: 59 minutes old may mean used a minute ago.
    recent.forEach((it, i) => at(it, (20 + 19 * i) * 60_000));
    const r = s.trim();
    expect(r.skipped).toBe(false);
    expect(s.get(old.a)).toBeNull();
    for (const [i, it] of recent.entries()) expect(readFileSync(it.hit.diskPath, "utf8")).toBe(String(i).repeat(3000));
    expect(r.keptBytes).toBeGreaterThan(9_000); // over 90% of the cap: the recent files stay all the same
  });

  test("every process's writes count towards the cap: runs whose trim is not due add their bytes to the estimate, until one trims", () => {
    const dir = fresh();
    const now = Date.now();
    const run = (i: number) => {
      const s = createDiskStore({ dir, now: () => now, maxSize: 20_000 }); // a plugin run: a process of its own
      const it = put(s, `run${i}`, String(i % 10).repeat(4000));
      const t = new Date(now - 3 * 3600_000 + i * 60_000); // used long enough ago to be evictable
      for (const p of [join(dir, it.a.slice(0, 2), `${it.a}-a`), it.hit.diskPath]) utimesSync(p, t, t);
      return s.trim();
    };
    expect(run(0).skipped).toBe(false); // no estimate yet: measured
    const reports = [1, 2, 3, 4, 5, 6].map(run);
    expect(reports.slice(0, 3).every((r) => r.skipped && r.counted)).toBe(true);
    expect(reports.some((r) => !r.skipped && r.removedFiles > 0)).toBe(true);
    const total = readdirSync(dir)
      .filter((d) => /^[0-9a-f]{2}$/.test(d))
      .flatMap((d) => readdirSync(join(dir, d)).map((f) => statSync(join(dir, d, f)).size))
      .reduce((x, y) => x + y, 0);
    expect(total).toBeLessThanOrEqual(20_000);
  });
});
