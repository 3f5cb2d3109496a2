// The time-saved decorator (src/buildcache/costs.ts) around a stub handler,
// with a clock the test moves: what a miss-to-put interval records, what a
// hit adds up, and what it never does (change an answer, throw, record an
// interval that is not one action's).
import { afterAll, describe, expect, test } from "bun:test";
import type { Hit } from "../../src/cacheprog/protocol.ts";
import type { CacheHandler } from "../../src/cacheprog/session.ts";
import { CostTracker, MAX_COST_MS, type CacheEvent } from "../../src/buildcache/costs.ts";
import { openCostBook } from "../../src/store/costs.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { tempDir } from "../helpers/env.ts";
import { stubHandler } from "../helpers/stub-handler.ts";

const tmp = tempDir("gostash-costs-tracker-");
afterAll(() => tmp.cleanup());

const A = "a".repeat(64);
const B = "b".repeat(64);
const OUT = "0".repeat(64);

function setup(inner?: CacheHandler) {
  let now = 1000;
  const dir = tempDir("gostash-costs-tracker-");
  const stub = stubHandler(dir.path);
  const book = openCostBook(dir.path);
  const metrics = new Metrics();
  const tracker = new CostTracker(book, metrics, () => now);
  const events: CacheEvent[] = [];
  tracker.listen((e) => events.push(e));
  const h = tracker.wrap(inner ?? stub);
  return { h, stub, book, metrics, events, tick: (ms: number) => (now += ms), cleanup: dir.cleanup };
}

async function put(h: CacheHandler, action: string, body = "x"): Promise<string> {
  const w = h.put(action, OUT, body.length);
  w.write(new TextEncoder().encode(body));
  return await w.commit();
}

describe("CostTracker", () => {
  test("a miss then a put records the interval; each later hit adds it to time_saved_seconds", async () => {
    const s = setup();
    expect(s.h.readMayBlock?.()).toBe(true);
    expect(s.h.get(A)).toBeNull();
    s.tick(1500);
    await put(s.h, A);
    expect(s.book.get(A)).toBe(1500);
    expect(s.metrics.get("costs_recorded")).toBe(1);
    const hit = s.h.get(A) as Hit;
    expect(hit.size).toBe(1);
    s.h.get(A);
    expect(s.metrics.get("time_saved_seconds")).toBeCloseTo(3.0, 9);
    expect(s.events.map((e) => e.kind)).toEqual(["miss", "put", "hit", "hit"]);
    expect(s.events[1]).toMatchObject({ kind: "put", costMs: 1500, size: 1 });
    expect(s.events[2]).toMatchObject({ kind: "hit", costMs: 1500, remote: false });
    s.cleanup();
  });

  test("the cost is in the book before the inner put commits (the upload of that put reads it)", async () => {
    let seenAtCommit: number | undefined;
    const dir = tempDir("gostash-costs-tracker-");
    const stub = stubHandler(dir.path);
    let book!: ReturnType<typeof openCostBook>;
    const inner: CacheHandler = {
      ...stub,
      get: (a) => stub.get(a),
      put(a, o, n) {
        const w = stub.put(a, o, n);
        return { write: (b) => w.write(b), abort: () => w.abort(), commit: () => ((seenAtCommit = book.get(a)), w.commit()) };
      },
    };
    const s = setup(inner);
    book = s.book;
    s.h.get(B);
    s.tick(250);
    await put(s.h, B);
    expect(seenAtCommit).toBe(250);
    s.cleanup();
    dir.cleanup();
  });

  test("hits with no recorded cost count nothing and are counted as such; a put with no miss before it records nothing", async () => {
    const s = setup();
    await put(s.h, A); // never missed here (e.g. go put without asking)
    expect(s.book.get(A)).toBeUndefined();
    s.h.get(A);
    expect(s.metrics.get("time_saved_seconds")).toBe(0);
    expect(s.metrics.get("uncosted_hits")).toBe(1);
    s.cleanup();
  });

  test("a miss longer ago than MAX_COST_MS is not the start of the put's interval", async () => {
    const s = setup();
    s.h.get(A);
    s.tick(MAX_COST_MS + 1);
    await put(s.h, A);
    expect(s.book.get(A)).toBeUndefined();
    s.cleanup();
  });

  test("an inner handler answering through a promise: same answer, marked as waited for (remote)", async () => {
    const dir = tempDir("gostash-costs-tracker-");
    const stub = stubHandler(dir.path);
    const inner: CacheHandler = { ...stub, readMayBlock: () => false, get: (a) => Promise.resolve(stub.get(a)), put: (a, o, n) => stub.put(a, o, n) };
    const s = setup(inner);
    expect(s.h.readMayBlock?.()).toBe(false);
    expect(await s.h.get(A)).toBeNull();
    s.tick(40);
    await put(s.h, A);
    const hit = await s.h.get(A);
    expect(hit?.outputID).toBe(OUT);
    expect(s.events.at(-1)).toMatchObject({ kind: "hit", remote: true, costMs: 40 });
    s.cleanup();
    dir.cleanup();
  });

  test("a listener that throws changes nothing for the go command", async () => {
    const s = setup();
    const t = new CostTracker(s.book, s.metrics);
    t.listen(() => {
      throw new Error("listener bug");
    });
    const h = t.wrap(s.stub);
    expect(h.get(A)).toBeNull();
    await put(h, A);
    expect(h.get(A)).not.toBeNull();
    s.cleanup();
  });
});
