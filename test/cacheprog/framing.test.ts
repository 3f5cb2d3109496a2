// The raw-byte framing the bridge relies on (src/cacheprog/framing.ts):
// what it replays after a cut must be exactly the unanswered requests, so
// that replay + the rest of the stream decodes, with the real decoder, to
// every request the daemon did not answer, in order, bodies intact.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { RequestDecoder } from "../../src/cacheprog/decoder.ts";
import { LineAssembler, RequestStreamTracker, RETAIN_BODY, responseID } from "../../src/cacheprog/framing.ts";
import { splitAt } from "./chunks.ts";

const SEED = Number(process.env.GOSTASH_FUZZ_SEED ?? 20261205);
const RUNS = Number(process.env.GOSTASH_FUZZ_RUNS ?? 200);
const enc = new TextEncoder();
const id32 = (n: number) => Buffer.alloc(32, n).toString("base64");

type Op = { kind: "get" } | { kind: "put"; body: Uint8Array } | { kind: "close" };

/** Frames ops as cmd/go does; IDs are 1..n. Returns the bytes and where each request ends. */
function frame(ops: Op[]): { bytes: Uint8Array; ends: number[] } {
  let text = "";
  const ends: number[] = [];
  ops.forEach((op, i) => {
    const id = i + 1;
    if (op.kind === "get") text += `{"ID":${id},"Command":"get","ActionID":"${id32(id)}"}\n\n`;
    else if (op.kind === "close") text += `{"ID":${id},"Command":"close"}\n\n`;
    else {
      const size = op.body.length ? `,"BodySize":${op.body.length}` : "";
      text += `{"ID":${id},"Command":"put","ActionID":"${id32(id)}","OutputID":"${id32(id + 1)}"${size}}\n\n`;
      if (op.body.length) text += `"${Buffer.from(op.body).toString("base64")}"\n`;
    }
    ends.push(text.length);
  });
  return { bytes: enc.encode(text), ends };
}

/** Every request in the bytes, decoded by the real decoder: ID and body (hex). */
function decode(chunks: Uint8Array[]): { id: number; body: string }[] {
  const out: { id: number; body: string }[] = [];
  const d = new RequestDecoder({
    request: (r) => void out.push({ id: r.id, body: "" }),
    bodyStart(r) {
      const parts: Uint8Array[] = [];
      out.push({ id: r.id, body: "" });
      const entry = out[out.length - 1]!;
      return { write: (b) => void (parts.push(b), (entry.body = Buffer.concat(parts).toString("hex"))) };
    },
    bodyEnd() {},
  });
  for (const c of chunks) d.push(c);
  d.end();
  return out;
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.constant({ kind: "get" as const }),
  fc.record({ kind: fc.constant("put" as const), body: fc.uint8Array({ maxLength: 200 }) }),
  fc.constant({ kind: "close" as const }),
);

describe("RequestStreamTracker", () => {
  test("replay + the rest of the stream = every unanswered request, in order, wherever the cut and the chunk borders fall", () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.nat(),
        fc.array(fc.boolean(), { maxLength: 12 }),
        (ops, cuts, cutSeed, answer) => {
          const { bytes, ends } = frame(ops);
          const cut = cutSeed % (bytes.length + 1);
          const t = new RequestStreamTracker();
          for (const c of splitAt(bytes.subarray(0, cut), cuts)) t.observe(c);
          // The daemon answered some of the requests it had whole.
          const answered = new Set<number>();
          ends.forEach((end, i) => {
            if (end <= cut && answer[i] && t.answered(i + 1)) answered.add(i + 1);
          });
          const r = t.replay();
          expect(t.broken).toBe(false);
          expect(r.unkept).toEqual([]);
          expect(r.cutBody).toBeNull();
          expect(t.replayable).toBe(true);
          const want = decode([bytes]).filter((q) => !answered.has(q.id));
          expect(decode([...r.bytes, ...splitAt(bytes.subarray(cut), cuts)])).toEqual(want);
          // The tracker is left as it was: the rest of the stream completes what was cut.
          for (const c of splitAt(bytes.subarray(cut), cuts)) t.observe(c);
          expect(t.midRequest).toBe(false);
          expect(t.unanswered).toBe(want.length);
          const closeAt = ops.findLastIndex((op) => op.kind === "close");
          expect(t.closeID).toBe(closeAt < 0 ? null : closeAt + 1);
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
  });

  test("midRequest: true inside a header, between a put header and its body, and inside the body", () => {
    const { bytes, ends } = frame([{ kind: "get" }, { kind: "put", body: enc.encode("hello world") }]);
    const t = new RequestStreamTracker();
    let i = 0;
    const seen: boolean[] = [];
    for (; i < bytes.length; i++) {
      t.observe(bytes.subarray(i, i + 1)); // byte by byte
      seen.push(t.midRequest);
    }
    const getHeaderEnd = ends[0]! - 2; // the header's newline
    expect(seen[0]).toBe(true);
    expect(seen[getHeaderEnd]).toBe(false);
    expect(seen[ends[0]! + 3]).toBe(true); // inside the put header
    const putHeaderEnd = new TextDecoder().decode(bytes).indexOf("\n", ends[0]!);
    expect(seen[putHeaderEnd]).toBe(true); // header done, body not started
    expect(seen[putHeaderEnd + 1]).toBe(true);
    expect(seen[bytes.length - 3]).toBe(true); // inside the body
    expect(seen[bytes.length - 1]).toBe(false);
    expect(t.unanswered).toBe(2);
  });

  test("a header cut short is copied: the reader may reuse its buffer", () => {
    const head = enc.encode(`{"ID":1,"Command":"get","ActionID":"${id32(1)}"}\n\n`);
    const buf = new Uint8Array(head);
    const t = new RequestStreamTracker();
    t.observe(buf.subarray(0, 10));
    buf.fill(0x41, 0, 10); // the reader reuses its buffer
    t.observe(head.subarray(10));
    expect(decode(t.replay().bytes).map((r) => r.id)).toEqual([1]);
  });

  test("a put too large to keep: not replayable; unkept once its body ended, cutBody while it is arriving", () => {
    const big = RETAIN_BODY + 1;
    const header = `{"ID":7,"Command":"put","ActionID":"${id32(7)}","OutputID":"${id32(8)}","BodySize":${big}}\n\n`;
    const get = `{"ID":8,"Command":"get","ActionID":"${id32(8)}"}\n\n`;
    const t = new RequestStreamTracker();
    t.observe(enc.encode(`${get}${header}"QUJD`));
    expect(t.replayable).toBe(false);
    let r = t.replay();
    expect(r.unkept).toEqual([]);
    expect(r.cutBody?.id).toBe(7);
    expect(decode(r.bytes).map((q) => q.id)).toEqual([8]);
    // The rest of the body is skipped; what follows it is handed back.
    expect(r.cutBody!.skip(enc.encode("REVG"))).toBeNull();
    const after = r.cutBody!.skip(enc.encode(`"\n${get}`));
    expect(new TextDecoder().decode(after!)).toBe(get);

    t.observe(enc.encode(`REVG"\n`));
    r = t.replay();
    expect(r.cutBody).toBeNull();
    expect(r.unkept.map((p) => p.id)).toEqual([7]);
  });

  test("BodyRemainder before the body line started: skips to its opening quote first", () => {
    const header = `{"ID":3,"Command":"put","ActionID":"${id32(3)}","OutputID":"${id32(4)}","BodySize":${RETAIN_BODY + 5}}\n`;
    const t = new RequestStreamTracker();
    t.observe(enc.encode(header));
    const { cutBody } = t.replay();
    expect(cutBody).not.toBeNull();
    expect(cutBody!.skip(enc.encode("\n"))).toBeNull(); // the blank line: no body yet
    expect(cutBody!.skip(enc.encode('"QUJD'))).toBeNull();
    expect(new TextDecoder().decode(cutBody!.skip(enc.encode('RA\n{"ID":4}'))!)).toBe('{"ID":4}');
    // A newline before the opening quote does not end the body.
    const again = new RequestStreamTracker();
    again.observe(enc.encode(header));
    const c2 = again.replay().cutBody!;
    expect(new TextDecoder().decode(c2.skip(enc.encode('\n"QUJD\n{"ID":5}'))!)).toBe('{"ID":5}');
  });

  test("a stream that is not GOCACHEPROG framing is marked broken", () => {
    for (const text of ["not json\n", '{"Command":"get"}\n', '["ID",1]\n', `{"ID":1,"x":"${"a".repeat((1 << 20) + 10)}`]) {
      const t = new RequestStreamTracker();
      t.observe(enc.encode(text));
      expect(t.broken).toBe(true);
    }
  });
});

describe("LineAssembler", () => {
  test("whole lines come out however the stream is split; a line cut short is copied", () => {
    const text = '{"ID":0,"KnownCommands":["get"]}\n{"ID":1,"Miss":true}\n{"ID":22,"DiskPath":"/x"}\n';
    const bytes = enc.encode(text);
    for (let a = 0; a <= bytes.length; a++) {
      for (let b = a; b <= bytes.length; b += 5) {
        const l = new LineAssembler();
        let out = "";
        for (const part of [bytes.slice(0, a), bytes.slice(a, b), bytes.slice(b)]) {
          const whole = l.push(part);
          if (whole) {
            expect(whole[whole.length - 1]).toBe(10);
            out += new TextDecoder().decode(whole);
          }
          part.fill(0x58); // the chunk's memory is reused after the call
        }
        expect(out).toBe(text);
      }
    }
  });

  test("reset forgets a line cut short", () => {
    const l = new LineAssembler();
    expect(l.push(enc.encode('{"ID":1,'))).toBeNull();
    l.reset();
    expect(new TextDecoder().decode(l.push(enc.encode('{"ID":2}\n'))!)).toBe('{"ID":2}\n');
  });
});

describe("responseID", () => {
  const id = (s: string) => {
    const b = enc.encode(`xx${s}yy`);
    return responseID(b, 2, 2 + s.length);
  };
  test("reads the leading ID without parsing the line", () => {
    expect(id('{"ID":0,"KnownCommands":[]}')).toBe(0);
    expect(id('{"ID":123456,"Miss":true}')).toBe(123456);
    expect(id('{"ID":7}')).toBe(7);
  });
  test("an ID that is not first is still found; a line without one is null", () => {
    expect(id('{"Miss":true,"ID":42}')).toBe(42);
    expect(id('{"Miss":true}')).toBeNull();
    expect(id('{"ID":"x"}')).toBeNull();
    expect(id("GOSTASH-ERROR busy")).toBeNull();
  });
});
