// The cost book (src/store/costs.ts): persistence, newest record wins,
// torn and corrupt records, compaction bounds, concurrent appenders, and
// that Go's own cache cleaning never touches it.
import { afterAll, describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bufferView, buildIndex, openIndex, SAMPLE } from "../../src/store/cost-index.ts";
import { COSTS_DIR, CostShard, decodeRecords, encodeRecord, openCostBook, RECORD_SIZE } from "../../src/store/costs.ts";
import { ROOT, run, tempDir } from "../helpers/env.ts";

const tmp = tempDir("gostash-costs-");
afterAll(() => tmp.cleanup());
let n = 0;
const fresh = () => {
  const d = join(tmp.path, `c${++n}`);
  mkdirSync(d, { recursive: true });
  return d;
};
/** A log file on disk as the reader sees it. */
const viewOf = (path: string) => bufferView(readFileSync(path), statSync(path, { bigint: true }).ino);
const id = (i: number, first = "") => (first + new Bun.CryptoHasher("sha256").update(`action ${i}`).digest("hex")).slice(0, 64);

describe("cost book", () => {
  test("records survive the process (a new book reads them); a later record replaces an earlier one", () => {
    const dir = fresh();
    const a = openCostBook(dir);
    a.record(id(1), 1234);
    a.record(id(2), 5);
    a.record(id(1), 4321);
    expect(a.get(id(1))).toBe(4321);
    a.flush();
    const b = openCostBook(dir);
    expect(b.get(id(1))).toBe(4321);
    expect(b.get(id(2))).toBe(5);
    expect(b.get(id(3))).toBeUndefined();
    expect(b.get("short")).toBeUndefined();
  });

  test("lives in gostash-costs/, which go clean -cache and Go's <xx> layout leave alone", async () => {
    const dir = fresh();
    const book = openCostBook(dir);
    book.record(id(7), 77);
    book.flush();
    mkdirSync(join(dir, "ab"));
    writeFileSync(join(dir, "ab", `${"ab".padEnd(64, "0")}-a`), "x");
    writeFileSync(join(dir, "README"), "This directory holds cached build artifacts from the Go build system.\n");
    const r = await run(["go", "clean", "-cache"], { env: { GOCACHE: dir, GOFLAGS: "", GOTOOLCHAIN: "local" }, cwd: ROOT, timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expect(existsSync(join(dir, "ab"))).toBe(false); // go clean did run
    expect(openCostBook(dir).get(id(7))).toBe(77);
    expect(readdirSync(join(dir, COSTS_DIR)).every((f) => /^[0-9a-f]\.(log|idx)$/.test(f))).toBe(true);
  });

  test("a torn record (crash mid-append) and garbage hide nothing that follows them", () => {
    const dir = fresh();
    const book = openCostBook(dir);
    const ids = [id(10, "a"), id(11, "a"), id(12, "a")].map((x) => `a${x.slice(1)}`);
    book.record(ids[0]!, 100);
    book.flush();
    const shard = join(dir, COSTS_DIR, "a.log");
    appendFileSync(shard, encodeRecord(ids[1]!, 999).subarray(0, 17)); // torn
    book.record(ids[1]!, 200);
    book.flush();
    appendFileSync(shard, Buffer.from("garbage, not a record at all, 40 bytes!")); // CRC fails
    book.record(ids[2]!, 300);
    book.flush();
    const again = openCostBook(dir);
    expect(ids.map((x) => again.get(x))).toEqual([100, 200, 300]);
    // A flipped byte inside a record: that record is dropped, not misread.
    expect(decodeRecords(Buffer.concat([encodeRecord(ids[0]!, 1), Buffer.from([1, 2, 3])]))).toHaveLength(1);
    const bad = encodeRecord(ids[0]!, 1);
    bad[33]! ^= 1;
    expect(decodeRecords(bad)).toHaveLength(0);
  });

  test("compaction keeps the shard under its limit and keeps the newest costs", () => {
    const dir = fresh();
    const limit = RECORD_SIZE * 100;
    const book = openCostBook(dir, { maxShardBytes: limit });
    const ids = Array.from({ length: 1000 }, (_, i) => `5${id(i).slice(1)}`);
    ids.forEach((x, i) => book.record(x, i));
    book.flush();
    const size = statSync(join(dir, COSTS_DIR, "5.log")).size;
    expect(size).toBeLessThanOrEqual(limit);
    expect(size % RECORD_SIZE).toBe(0);
    const again = openCostBook(dir, { maxShardBytes: limit });
    expect(again.get(ids[999]!)).toBe(999);
    expect(again.get(ids[0]!)).toBeUndefined();
    expect(readdirSync(join(dir, COSTS_DIR)).sort()).toEqual(["5.index", "5.log"]); // no temp file left
  });

  test("records are written in batches: one append per shard, within FLUSH_MS of the first, or at the process's exit", async () => {
    const dir = fresh();
    const book = openCostBook(dir);
    const ids = Array.from({ length: 30 }, (_, i) => `${i % 2 ? "b" : "c"}${id(i).slice(1)}`);
    ids.forEach((x, i) => book.record(x, i + 1));
    expect(existsSync(join(dir, COSTS_DIR, "b.log"))).toBe(false); // not yet
    await Bun.sleep(1_000);
    expect(statSync(join(dir, COSTS_DIR, "b.log")).size).toBe(15 * RECORD_SIZE);
    const again = openCostBook(dir);
    expect(ids.map((x) => again.get(x))).toEqual(ids.map((_, i) => i + 1));
  });

  test("several processes appending at once lose nothing (each writes its batches as it exits, with no flush of its own)", async () => {
    const dir = fresh();
    const script = join(tmp.path, "append.ts");
    writeFileSync(
      script,
      `import { openCostBook } from ${JSON.stringify(join(ROOT, "src/store/costs.ts"))};\n` +
        `const [dir, p] = process.argv.slice(2);\nconst b = openCostBook(dir!, { maxShardBytes: 1 << 30 });\n` +
        `for (let i = 0; i < 400; i++) b.record(new Bun.CryptoHasher("sha256").update(p + ":" + i).digest("hex"), i + 1);\n`,
    );
    const procs = [0, 1, 2, 3].map((p) => run([process.execPath, script, dir, String(p)], { timeoutMs: 120_000 }));
    for (const r of await Promise.all(procs)) expect(r.code).toBe(0);
    const book = openCostBook(dir);
    let found = 0;
    for (let p = 0; p < 4; p++) for (let i = 0; i < 400; i++) if (book.get(new Bun.CryptoHasher("sha256").update(`${p}:${i}`).digest("hex")) === i + 1) found++;
    expect(found).toBe(1600);
  }, 180_000);

  test("a cache directory that cannot be written: record reports the error and never throws", () => {
    const dir = fresh();
    writeFileSync(join(dir, COSTS_DIR), "a file where the directory should be");
    const errors: string[] = [];
    const book = openCostBook(dir, { onError: (e) => errors.push(e.message) });
    expect(() => book.record(id(1), 10)).not.toThrow();
    expect(() => book.flush()).not.toThrow();
    expect(errors.length).toBe(1);
    expect(book.get(id(1))).toBe(10); // still known to this process
  });
});

describe("cost book index", () => {
  const shardIDs = (n: number, h: string, salt = "") => Array.from({ length: n }, (_, i) => `${h}${id(i, salt).slice(1)}`);
  const logOf = (ids: string[], ms: (i: number) => number) => Buffer.concat(ids.map((x, i) => encodeRecord(x, ms(i))));
  const INO = 4242n;
  const shardOf = (log: Buffer, idx: Uint8Array | null, ino = INO) => CostShard.open(bufferView(log, ino), idx);

  test("a log's index holds the newest cost of every action; with it, only the records appended since are read", () => {
    const ids = shardIDs(3000, "7");
    // Every action twice, the second time newer: the index must hold the later cost.
    const log = Buffer.concat([logOf(ids, (i) => i), logOf(ids, (i) => i + 10_000)]);
    const idx = buildIndex(log, INO);
    const reads: [number, number][] = [];
    const view = bufferView(log, INO);
    const shard = CostShard.open({ ...view, read: (a, b) => (reads.push([a, b]), view.read(a, b)) }, idx);
    expect(shard.tailBytes).toBe(0); // the whole log is covered: nothing went into a map
    // Two samples of 4 KiB and the (empty) tail: never the whole log.
    expect(reads.reduce((n, [a, b]) => n + b - a, 0)).toBe(2 * SAMPLE);
    expect(ids.map((x) => shard.get(x))).toEqual(ids.map((_, i) => i + 10_000));
    expect(shard.get(`7${id(99_999).slice(1)}`)).toBeUndefined();
    // Records appended after the index (the tail) are newer than what it covers.
    const more = logOf(ids.slice(0, 10), () => 7);
    const grown = shardOf(Buffer.concat([log, more]), idx);
    expect(grown.tailBytes).toBe(more.length);
    expect(ids.slice(0, 12).map((x) => grown.get(x))).toEqual([...Array(10).fill(7), 10_010, 10_011]);
  });

  test("an index that does not describe its log is never believed: another file, a rewrite on a reused inode, flipped byte, cut short, empty, the first format", () => {
    const ids = shardIDs(500, "8");
    const log = logOf(ids, (i) => i + 1);
    const idx = buildIndex(log, INO);
    expect(openIndex(idx, bufferView(log, INO))?.covers).toBe(log.length);
    // Another process compacted the log (a new file, renamed over it): same records, another order, other costs.
    const rewritten = logOf([...ids].reverse(), () => 5);
    expect(openIndex(idx, bufferView(rewritten, INO + 1n))).toBeNull();
    // The same, on a file that got the old one's inode number back: its samples differ.
    expect(openIndex(idx, bufferView(rewritten, INO))).toBeNull();
    for (const ino of [INO, INO + 1n]) {
      const shard = shardOf(rewritten, idx, ino);
      expect(shard.tailBytes).toBe(rewritten.length); // all of it read the slow way
      expect(ids.every((x) => shard.get(x) === 5)).toBe(true);
    }
    // A change at either end of what the index covers is in a sample.
    for (const at of [3, log.length - 3]) {
      const changed = Buffer.from(log);
      changed[at]! ^= 1;
      expect(openIndex(idx, bufferView(changed, INO))).toBeNull();
    }
    for (const at of [0, 5, 9, 17, 24, 30, idx.length - 1]) {
      const bad = Buffer.from(idx);
      bad[at]! ^= 0x40;
      expect(openIndex(bad, bufferView(log, INO))).toBeNull();
    }
    expect(openIndex(idx.subarray(0, idx.length - 12), bufferView(log, INO))).toBeNull();
    expect(openIndex(idx, bufferView(log.subarray(0, log.length - RECORD_SIZE), INO))).toBeNull(); // covers more than the log holds
    expect(openIndex(Buffer.alloc(0), bufferView(log, INO))).toBeNull();
    // The first format ("GSCI", offsets into the log) is read as no index.
    const first = Buffer.from(idx);
    first.write("GSCI", 0, "latin1");
    expect(openIndex(first, bufferView(log, INO))).toBeNull();
  });

  test("on disk: a compaction by another process (a new file renamed over the log) makes the reader read the log, not the stale index", () => {
    const dir = fresh();
    const o = { maxShardBytes: RECORD_SIZE * 10_000, maxTailBytes: RECORD_SIZE * 50 };
    const ids = shardIDs(300, "5");
    const book = openCostBook(dir, o);
    ids.forEach((x, i) => book.record(x, i + 1));
    book.flush();
    const logPath = join(dir, COSTS_DIR, "5.log");
    const idx = readFileSync(join(dir, COSTS_DIR, "5.index"));
    expect(openIndex(idx, bufferView(readFileSync(logPath), statSync(logPath, { bigint: true }).ino))?.covers).toBe(300 * RECORD_SIZE);
    expect(openCostBook(dir, o).get(ids[42]!)).toBe(43);
    // An older gostash compacts: a temp file renamed over the log, costs changed; it knows nothing of 5.index.
    writeFileSync(`${logPath}.tmp`, logOf(ids, () => 9));
    renameSync(`${logPath}.tmp`, logPath);
    expect(openCostBook(dir, o).get(ids[42]!)).toBe(9);
  });

  test("the writer indexes a shard whose tail grows past maxTailBytes, and a reader's flush indexes a long tail it found", () => {
    const dir = fresh();
    const o = { maxShardBytes: RECORD_SIZE * 10_000, maxTailBytes: RECORD_SIZE * 50 };
    const ids = shardIDs(200, "9");
    const book = openCostBook(dir, o);
    ids.slice(0, 40).forEach((x, i) => book.record(x, i + 1));
    book.flush();
    const idxPath = join(dir, COSTS_DIR, "9.index");
    const logPath = join(dir, COSTS_DIR, "9.log");
    expect(existsSync(idxPath)).toBe(false); // a short tail is left as it is
    ids.slice(40).forEach((x, i) => book.record(x, i + 41));
    book.flush();
    expect(openIndex(readFileSync(idxPath), viewOf(logPath))?.covers).toBe(200 * RECORD_SIZE);
    const again = openCostBook(dir, o);
    expect(ids.map((x) => again.get(x))).toEqual(ids.map((_, i) => i + 1));

    // A log written before indexes (or by an older gostash, with its first index): a reader indexes it at its flush, with nothing to append.
    const old = fresh();
    mkdirSync(join(old, COSTS_DIR));
    writeFileSync(join(old, COSTS_DIR, "9.log"), logOf(ids, (i) => i + 1));
    writeFileSync(join(old, COSTS_DIR, "9.idx"), "GSCI and the rest of a first-format index");
    const reader = openCostBook(old, o);
    expect(reader.get(ids[7]!)).toBe(8);
    expect(existsSync(join(old, COSTS_DIR, "9.index"))).toBe(false); // not while answering
    reader.flush();
    expect(openIndex(readFileSync(join(old, COSTS_DIR, "9.index")), viewOf(join(old, COSTS_DIR, "9.log")))?.covers).toBe(200 * RECORD_SIZE);
    expect(readdirSync(join(old, COSTS_DIR)).sort()).toEqual(["9.index", "9.log"]); // the first format's file is gone
  });

  test("a plugin process that only read a long tail writes the index as it exits", async () => {
    const dir = fresh();
    mkdirSync(join(dir, COSTS_DIR));
    const ids = shardIDs(2000, "6");
    writeFileSync(join(dir, COSTS_DIR, "6.log"), logOf(ids, (i) => i + 1));
    const script = join(tmp.path, "read.ts");
    writeFileSync(
      script,
      `import { openCostBook } from ${JSON.stringify(join(ROOT, "src/store/costs.ts"))};\n` +
        `const b = openCostBook(process.argv[2]!);\nconsole.log(b.get(process.argv[3]!));\n`,
    );
    const r = await run([process.execPath, script, dir, ids[1234]!], { timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("1235");
    expect(openIndex(readFileSync(join(dir, COSTS_DIR, "6.index")), viewOf(join(dir, COSTS_DIR, "6.log")))?.covers).toBe(2000 * RECORD_SIZE);
  });
});
