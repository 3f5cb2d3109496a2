// Protocol tests over in-memory streams: the session is fed bytes exactly as
// `go` frames them and its answers are parsed back. The handler is a stub
// (test/helpers/stub-handler.ts): these tests know nothing of any store.
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { FramingError } from "../../src/cacheprog/decoder.ts";
import type { Hit } from "../../src/cacheprog/protocol.ts";
import { CacheProgSession, type CacheHandler } from "../../src/cacheprog/session.ts";
import { stubHandler } from "../helpers/stub-handler.ts";
import { tempDir } from "../helpers/env.ts";

const tmp = tempDir("gostash-session-");
afterAll(() => tmp.cleanup());

const b64 = (hex: string) => Buffer.from(hex, "hex").toString("base64");
const sha = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");
const enc = new TextEncoder();

interface Answer {
  ID: number;
  Miss?: boolean;
  Err?: string;
  OutputID?: string;
  Size?: number;
  Time?: string;
  DiskPath?: string;
}

function harness(handler?: CacheHandler) {
  const dir = tempDir("gostash-session-store-");
  const h = handler ?? stubHandler(dir.path);
  const lines: string[] = [];
  let done: string | null = null;
  const s = new CacheProgSession(h, { write: (l) => lines.push(l) }, { onDone: (r) => (done = r) });
  return {
    s,
    dir: dir.path,
    push: (text: string) => s.push(enc.encode(text)),
    answers: (): Answer[] =>
      lines.map((l) => {
        expect(l.endsWith("\n")).toBe(true);
        expect(l.indexOf("\n")).toBe(l.length - 1); // one JSON object per line
        return JSON.parse(l);
      }),
    done: () => done,
  };
}

/** Frames a request as cmd/go does: JSON, newline, then an empty line. */
function req(obj: Record<string, unknown>): string {
  return `${JSON.stringify(obj)}\n\n`;
}
function putReq(id: number, action: string, body: Uint8Array, field: "OutputID" | "ObjectID" = "OutputID"): string {
  const out = sha(body);
  const head = { ID: id, Command: "put", ActionID: b64(action), [field]: b64(out), ...(body.length ? { BodySize: body.length } : {}) };
  return req(head) + (body.length ? `"${Buffer.from(body).toString("base64")}"\n` : "");
}
const action = (n: number) => sha(`action-${n}`);

describe("framing", () => {
  test("put then get round-trips through the store; hit carries OutputID, Size, Time, DiskPath", async () => {
    const t = harness();
    const body = enc.encode("hello, cache");
    t.push(putReq(1, action(1), body));
    t.push(req({ ID: 2, Command: "get", ActionID: b64(action(1)) }));
    t.push(req({ ID: 3, Command: "get", ActionID: b64(action(2)) }));
    const [put, hit, miss] = t.answers();
    expect(put!.ID).toBe(1);
    expect(readFileSync(put!.DiskPath!, "utf8")).toBe("hello, cache");
    expect(hit!).toMatchObject({ ID: 2, OutputID: b64(sha(body)), Size: body.length, DiskPath: put!.DiskPath });
    expect(Date.parse(hit!.Time!)).toBeGreaterThan(Date.now() - 60_000);
    expect(hit!.Time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    expect(miss).toEqual({ ID: 3, Miss: true });
  });

  test("accepts the pre-1.24 ObjectID name", () => {
    const t = harness();
    t.push(putReq(1, action(3), enc.encode("old go"), "ObjectID"));
    t.push(req({ ID: 2, Command: "get", ActionID: b64(action(3)) }));
    expect(t.answers()[1]).toMatchObject({ ID: 2, OutputID: b64(sha("old go")), Size: 6 });
  });

  test("a zero-size put has no BodySize and no body line", () => {
    const t = harness();
    t.push(putReq(1, action(4), new Uint8Array()));
    t.push(req({ ID: 2, Command: "get", ActionID: b64(action(4)) }));
    const [put, hit] = t.answers();
    expect(readFileSync(put!.DiskPath!).length).toBe(0);
    expect(hit).toMatchObject({ ID: 2, Size: 0, OutputID: b64(sha("")) });
  });

  test("bytes may arrive split anywhere, even one at a time", () => {
    const t = harness();
    const body = new Uint8Array(1000).map((_, i) => (i * 7) & 0xff);
    const stream = putReq(1, action(5), body) + req({ ID: 2, Command: "get", ActionID: b64(action(5)) });
    for (const ch of stream) t.push(ch);
    const [put, hit] = t.answers();
    expect(sha(readFileSync(put!.DiskPath!))).toBe(sha(body));
    expect(hit!.Size).toBe(1000);
  });

  test("the reader may reuse its buffer: nothing keeps a view of a pushed chunk", () => {
    // stdio.ts reads stdin into one buffer, and a socket's chunk memory is
    // not ours either: a line cut by a chunk boundary must survive the
    // buffer being overwritten before the rest arrives.
    const t = harness();
    const body = new Uint8Array(5000).map((_, i) => (i * 13) & 0xff);
    let stream = putReq(1, action(60), body);
    for (let i = 0; i < 40; i++) stream += req({ ID: 2 + i, Command: "get", ActionID: b64(action(60 + (i % 3))) });
    const bytes = enc.encode(stream);
    const buf = new Uint8Array(97);
    for (let off = 0; off < bytes.length; off += buf.length) {
      const n = Math.min(buf.length, bytes.length - off);
      buf.set(bytes.subarray(off, off + n));
      t.s.push(buf.subarray(0, n));
      buf.fill(0x7b); // "{": what the next read would leave there
    }
    const answers = t.answers();
    expect(answers.length).toBe(41);
    expect(sha(readFileSync(answers[0]!.DiskPath!))).toBe(sha(body));
    expect(answers.filter((a) => a.Miss !== true).length).toBe(1 + 14);
  });

  test("base64 quanta split across chunks decode correctly", () => {
    for (const len of [1, 2, 3, 4, 5, 31, 32, 33]) {
      const t = harness();
      const body = new Uint8Array(len).map((_, i) => 255 - i);
      const s = putReq(1, action(100 + len), body);
      for (let cut = 1; cut < s.length; cut += 5) {
        const t2 = harness();
        t2.push(s.slice(0, cut));
        t2.push(s.slice(cut));
        expect(sha(readFileSync(t2.answers()[0]!.DiskPath!))).toBe(sha(body));
      }
      t.push(s);
      expect(t.answers()[0]!.Err).toBeUndefined();
    }
  });

  test("close answers after pending work and ends the session", async () => {
    const t = harness();
    t.push(req({ ID: 1, Command: "get", ActionID: b64(action(9)) }));
    t.push(req({ ID: 2, Command: "close" }));
    await Bun.sleep(0);
    expect(t.answers()).toEqual([{ ID: 1, Miss: true }, { ID: 2 }]);
    expect(t.done()).toBe("close");
  });

  test("EOF without close answers everything and finishes", async () => {
    const t = harness();
    t.push(req({ ID: 1, Command: "get", ActionID: b64(action(9)) }));
    await t.s.end();
    expect(t.answers()).toEqual([{ ID: 1, Miss: true }]);
    expect(t.done()).toBe("eof");
  });
});

describe("concurrency", () => {
  test("answers go out as they finish, out of order, matched by ID", async () => {
    const resolvers = new Map<string, (h: Hit | null) => void>();
    const handler: CacheHandler = {
      get: (a) => new Promise((r) => resolvers.set(a, r)),
      put: () => {
        throw new Error("unused");
      },
      close() {},
    };
    const t = harness(handler);
    for (let i = 1; i <= 5; i++) t.push(req({ ID: i, Command: "get", ActionID: b64(action(i)) }));
    expect(t.answers()).toEqual([]);
    for (let i = 5; i >= 1; i--) {
      resolvers.get(action(i))!(i % 2 ? null : { outputID: action(50), size: 1, timeNanos: 0n, diskPath: "/x" });
      await Bun.sleep(0);
    }
    expect(t.answers().map((a) => a.ID)).toEqual([5, 4, 3, 2, 1]);
    expect(t.answers()[1]).toMatchObject({ ID: 4, Size: 1, Time: "1970-01-01T00:00:00.000000000Z" });
    // close waits for in-flight work
    resolvers.clear();
    t.push(req({ ID: 6, Command: "get", ActionID: b64(action(6)) }));
    t.push(req({ ID: 7, Command: "close" }));
    await Bun.sleep(5);
    expect(t.answers().map((a) => a.ID)).toEqual([5, 4, 3, 2, 1]);
    resolvers.get(action(6))!(null);
    await Bun.sleep(5);
    expect(t.answers().map((a) => a.ID)).toEqual([5, 4, 3, 2, 1, 6, 7]);
  });

  test("a get that throws or rejects is a miss, never an Err (an Err fails the build)", async () => {
    let n = 0;
    const handler: CacheHandler = {
      get: () => {
        if (n++ === 0) throw new Error("disk on fire");
        return Promise.reject(new Error("remote on fire"));
      },
      put: () => {
        throw new Error("no space");
      },
      close() {},
    };
    const t = harness(handler);
    t.push(req({ ID: 1, Command: "get", ActionID: b64(action(1)) }));
    t.push(req({ ID: 2, Command: "get", ActionID: b64(action(1)) }));
    t.push(putReq(3, action(1), enc.encode("x")));
    await Bun.sleep(1);
    const a = t.answers();
    expect(a[0]).toEqual({ ID: 1, Miss: true });
    expect(a[1]!.ID).toBe(3);
    expect(a[1]!.Err).toContain("no space");
    expect(a[2]).toEqual({ ID: 2, Miss: true });
  });
});

describe("bad input", () => {
  test("unknown command gets an Err for its ID and the stream goes on", () => {
    const t = harness();
    t.push(req({ ID: 1, Command: "frobnicate" }));
    t.push(req({ ID: 2, Command: "get", ActionID: b64(action(1)) }));
    const [a, b] = t.answers();
    expect(a!.ID).toBe(1);
    expect(a!.Err).toContain("unknown command");
    expect(b).toEqual({ ID: 2, Miss: true });
  });

  test("wrong BodySize (short and long) is an Err and nothing is stored", () => {
    const t = harness();
    const body = enc.encode("twelve bytes");
    const out = b64(sha(body));
    const data = `"${Buffer.from(body).toString("base64")}"\n`;
    t.push(req({ ID: 1, Command: "put", ActionID: b64(action(1)), OutputID: out, BodySize: 13 }) + data);
    t.push(req({ ID: 2, Command: "put", ActionID: b64(action(2)), OutputID: out, BodySize: 5 }) + data);
    t.push(req({ ID: 3, Command: "get", ActionID: b64(action(1)) }));
    t.push(req({ ID: 4, Command: "get", ActionID: b64(action(2)) }));
    const a = t.answers();
    expect(a[0]!.Err).toContain("BodySize is 13");
    expect(a[1]!.Err).toContain("longer than BodySize 5");
    expect(a[2]).toEqual({ ID: 3, Miss: true });
    expect(a[3]).toEqual({ ID: 4, Miss: true });
  });

  test("a get with a malformed ActionID is a miss; a put without OutputID is an Err", () => {
    const t = harness();
    t.push(req({ ID: 1, Command: "get", ActionID: "AAAA" }));
    t.push(req({ ID: 2, Command: "get" }));
    t.push(req({ ID: 3, Command: "put", ActionID: b64(action(1)) }));
    const a = t.answers();
    expect(a[0]).toEqual({ ID: 1, Miss: true });
    expect(a[1]).toEqual({ ID: 2, Miss: true });
    expect(a[2]!.Err).toContain("OutputID");
  });

  test("a body that is not base64 is an Err", () => {
    const t = harness();
    t.push(req({ ID: 1, Command: "put", ActionID: b64(action(1)), OutputID: b64(action(2)), BodySize: 3 }) + '"!!!!"\n');
    expect(t.answers()[0]!.Err).toContain("base64");
  });

  // Each of these decodes to some bytes of the right length with Buffer.from, which is lenient: never stored.
  for (const [name, size, text] of [
    ["base64url's alphabet (- and _)", 2, "-_8="],
    ["padding inside", 1, "AA==AAA="],
    ["bits set in its padding", 1, "AB=="],
    ["a character outside the alphabet", 2, "AA*A"],
    ["a character outside ASCII", 2, "AA\u00c1A"],
  ] as const) {
    test(`a body with ${name} is an Err, and nothing is stored`, () => {
      const t = harness();
      t.push(req({ ID: 1, Command: "put", ActionID: b64(action(1)), OutputID: b64(action(2)), BodySize: size }) + `"${text}"\n`);
      expect(t.answers()[0]!.Err).toContain("base64");
      t.push(req({ ID: 2, Command: "get", ActionID: b64(action(1)) }));
      expect(t.answers()[1]!.Miss).toBe(true);
    });
  }

  for (const [name, text] of [
    ["not JSON", "this is not json\n"],
    ["a JSON array", "[1,2,3]\n"],
    ["no ID", '{"Command":"get"}\n'],
    ["a negative BodySize", '{"ID":1,"Command":"put","BodySize":-4}\n'],
    ["a body that is not a string", `${JSON.stringify({ ID: 1, Command: "put", ActionID: b64(action(1)), OutputID: b64(action(2)), BodySize: 3 })}\n\nxyz\n`],
    ["a body cut by a newline", `${JSON.stringify({ ID: 1, Command: "put", ActionID: b64(action(1)), OutputID: b64(action(2)), BodySize: 3 })}\n\n"AAA\n`],
  ] as const) {
    test(`framing error: ${name}`, () => {
      const t = harness();
      expect(() => t.push(text)).toThrow(FramingError);
      // the session stays failed; it never answers garbage
      expect(() => t.push(req({ ID: 9, Command: "get" }))).toThrow(FramingError);
      expect(t.answers()).toEqual([]);
    });
  }

  test("EOF in the middle of a body is a framing error and the partial put is discarded", async () => {
    const t = harness();
    t.push(`${JSON.stringify({ ID: 1, Command: "put", ActionID: b64(action(1)), OutputID: b64(action(2)), BodySize: 30 })}\n\n"AAAA`);
    await expect(t.s.end()).rejects.toThrow(FramingError);
    const glob = new Bun.Glob("**/*");
    expect([...glob.scanSync(t.dir)]).toEqual([]);
  });

  test("input cut inside a put (go killed mid-put): the handler is still closed, after what was pending, so its uploads flush and its command ends", async () => {
    const events: string[] = [];
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    const inner = stubHandler(tempDir("gostash-session-store-").path);
    const t = harness({
      ...inner,
      get: async (a) => (await slow, events.push("get answered"), inner.get(a)),
      close: () => void events.push("close"),
    });
    t.push(req({ ID: 1, Command: "get", ActionID: b64(action(1)) }));
    t.push(`${JSON.stringify({ ID: 2, Command: "put", ActionID: b64(action(2)), OutputID: b64(action(3)), BodySize: 30 })}\n\n"AAAA`);
    const ended = t.s.end();
    release();
    await expect(ended).rejects.toThrow(FramingError);
    expect(events).toEqual(["get answered", "close"]);
    expect(t.s.finished).toBe(true);
    expect(t.done()).toBe("eof");
    expect(t.answers().map((a) => a.ID)).toEqual([1]); // no answer to the cut put, nor to a close never sent
  });
});

describe("large bodies", () => {
  test("a 300 MB put streams to disk without holding the body in memory", () => {
    const t = harness();
    const size = 300 * 1024 * 1024;
    // 3 MiB of varied bytes, base64-encoded once: 4 MiB of text per push.
    const block = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 2654435761) >>> 24);
    const blockText = enc.encode(Buffer.from(block).toString("base64"));
    const hash = createHash("sha256");
    for (let n = 0; n < size; n += block.length) hash.update(block);
    const outputID = hash.digest("hex");
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    t.push(req({ ID: 1, Command: "put", ActionID: b64(action(1)), OutputID: b64(outputID), BodySize: size }));
    t.push('"');
    for (let n = 0; n < size; n += block.length) {
      t.s.push(blockText);
      if ((n / block.length) % 10 === 0) {
        Bun.gc(true); // measure live memory, not garbage the GC has not reached yet
        peak = Math.max(peak, process.memoryUsage().rss);
      }
    }
    t.push('"\n');
    const [put] = t.answers();
    expect(put!.Err).toBeUndefined();
    const f = Bun.file(put!.DiskPath!);
    expect(f.size).toBe(size);
    // The body never sits in memory whole (it would take 300 MB, plus 400 MB
    // of base64). The binary's own peak is checked tightly in test/cli.test.ts.
    expect(peak - rss0).toBeLessThan(200 * 1024 * 1024);
    t.push(req({ ID: 2, Command: "get", ActionID: b64(action(1)) }));
    expect(t.answers()[1]).toMatchObject({ ID: 2, Size: size, OutputID: b64(outputID) });
  }, 120_000);
});
