// Property-based tests of the protocol decoder and session, seeded and
// bounded so CI is reproducible. GOSTASH_FUZZ_RUNS raises the count
// (scripts/fuzz.ts runs them longer).
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { FramingError } from "../../src/cacheprog/decoder.ts";
import { CacheProgSession } from "../../src/cacheprog/session.ts";
import { createDiskStore } from "../../src/store/disk.ts";
import { createLocalCache } from "../../src/buildcache/local.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { tempDir } from "../helpers/env.ts";
import { splitAt } from "./chunks.ts";

const SEED = Number(process.env.GOSTASH_FUZZ_SEED ?? 20261122);
const RUNS = Number(process.env.GOSTASH_FUZZ_RUNS ?? 150);
const tmp = tempDir("gostash-fuzz-");
afterAll(() => tmp.cleanup());

const sha = (d: string | Uint8Array) => createHash("sha256").update(d).digest("hex");
const b64 = (hex: string) => Buffer.from(hex, "hex").toString("base64");

type Op = { kind: "put"; key: number; body: Uint8Array; legacy: boolean } | { kind: "get"; key: number } | { kind: "bogus"; name: string };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("put" as const), key: fc.nat(20), body: fc.uint8Array({ maxLength: 300 }), legacy: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("get" as const), key: fc.nat(20) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("bogus" as const), name: fc.string({ maxLength: 10 }) }) },
);

function frame(ops: Op[]): { text: string; ids: number[] } {
  let text = "";
  const ids: number[] = [];
  ops.forEach((op, i) => {
    const id = i + 1;
    ids.push(id);
    if (op.kind === "get") text += `${JSON.stringify({ ID: id, Command: "get", ActionID: b64(sha(`k${op.key}`)) })}\n\n`;
    else if (op.kind === "bogus") text += `${JSON.stringify({ ID: id, Command: `x-${op.name}` })}\n\n`;
    else {
      const out = b64(sha(op.body));
      const head: Record<string, unknown> = { ID: id, Command: "put", ActionID: b64(sha(`k${op.key}`)), [op.legacy ? "ObjectID" : "OutputID"]: out };
      if (op.body.length) head.BodySize = op.body.length;
      text += `${JSON.stringify(head)}\n\n${op.body.length ? `"${Buffer.from(op.body).toString("base64")}"\n` : ""}`;
    }
  });
  return { text, ids };
}

let storeN = 0;
function session() {
  const store = createDiskStore({ dir: `${tmp.path}/s${++storeN}` });
  const lines: string[] = [];
  const s = new CacheProgSession(createLocalCache(store, new Metrics()), { write: (l) => lines.push(l) });
  return { s, lines, dir: `${tmp.path}/s${storeN}` };
}

describe("fuzz: protocol decoder and session", () => {
  test("well-formed streams, split anywhere, are answered exactly like a model cache", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 30 }), (ops, cuts) => {
        const { s, lines } = session();
        const { text, ids } = frame(ops);
        for (const chunk of splitAt(new TextEncoder().encode(text), cuts)) s.push(chunk);
        const answers = lines.map((l) => JSON.parse(l));
        expect(answers.map((a) => a.ID).sort((x, y) => x - y)).toEqual(ids);
        // model: last put per key wins
        const model = new Map<number, Uint8Array>();
        const byId = new Map(answers.map((a) => [a.ID, a]));
        ops.forEach((op, i) => {
          const a = byId.get(i + 1)!;
          if (op.kind === "bogus") expect(a.Err).toContain("unknown command");
          else if (op.kind === "put") {
            expect(a.Err).toBeUndefined();
            expect(sha(readFileSync(a.DiskPath))).toBe(sha(op.body));
            model.set(op.key, op.body);
          } else {
            const want = model.get(op.key);
            if (!want) expect(a).toEqual({ ID: i + 1, Miss: true });
            else {
              expect(a.OutputID).toBe(b64(sha(want)));
              expect(a.Size).toBe(want.length);
            }
          }
        });
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  test("mutated streams: only FramingError is ever thrown, every answer is one JSON line with an integer ID and paths inside the cache", () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { minLength: 1, maxLength: 15 }),
        fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }), mode: fc.constantFrom("set", "insert", "delete") }), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (ops, mutations, cuts) => {
          const { s, lines, dir } = session();
          const bytes = [...new TextEncoder().encode(frame(ops).text)];
          for (const m of mutations) {
            const at = m.at % (bytes.length + 1);
            if (m.mode === "set" && at < bytes.length) bytes[at] = m.byte;
            else if (m.mode === "insert") bytes.splice(at, 0, m.byte);
            else if (at < bytes.length) bytes.splice(at, 1);
          }
          for (const chunk of splitAt(Uint8Array.from(bytes), cuts)) {
            try {
              s.push(chunk);
            } catch (err) {
              expect(err).toBeInstanceOf(FramingError);
              break;
            }
          }
          for (const l of lines) {
            expect(l.endsWith("\n")).toBe(true);
            const a = JSON.parse(l);
            expect(Number.isSafeInteger(a.ID)).toBe(true);
            if (a.DiskPath) expect(a.DiskPath.startsWith(dir)).toBe(true);
          }
        },
      ),
      { seed: SEED, numRuns: RUNS * 2 },
    );
  });

  test("random bytes never crash the decoder with anything but FramingError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
        const { s, lines } = session();
        try {
          s.push(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(FramingError);
        }
        for (const l of lines) JSON.parse(l);
      }),
      { seed: SEED, numRuns: RUNS * 2 },
    );
  });
});
