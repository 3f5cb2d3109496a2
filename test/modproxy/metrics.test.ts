// What the proxy's counters say about each kind of answer, in process
// (Request -> Response): bytes served are the body bytes of what is sent
// (a range, nothing for HEAD or 304, a zip streamed while it downloads),
// and offline answers (computed list and @latest, the sumdb) are counted
// like the others. test/e2e/modproxy-metrics.test.ts checks the same
// counters against the real go command.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createModProxy, type ModProxy } from "../../src/modproxy/serve/proxy.ts";
import type { Metrics } from "../../src/util/metrics.ts";
import { tempDir } from "../helpers/env.ts";
import { proxyOptions, startUpstream, writeModule, writeTestModules, type Upstream } from "./helpers.ts";

let t: ReturnType<typeof tempDir>;
let up: Upstream;
let upDir: string;

beforeAll(() => {
  t = tempDir("gostash-modproxy-metrics-unit-");
  upDir = join(t.path, "up");
  writeTestModules(upDir);
  const payload = Array.from({ length: 40_000 }, (_, i) => `line ${i} ${Math.sin(i)}\n`).join("");
  writeModule(upDir, { path: "example.com/big", version: "v1.0.0", files: { "data.txt": payload } });
  up = startUpstream(upDir);
});

afterAll(() => {
  up.stop();
  t.cleanup();
});

let n = 0;
function proxy(over: Parameters<typeof proxyOptions>[2] = {}): { p: ModProxy; m: Metrics; dir: string } {
  const dir = join(t.path, `cache${++n}`);
  const o = proxyOptions(dir, up.url, over);
  return { p: createModProxy(o), m: o.metrics, dir };
}

async function get(p: ModProxy, path: string, init: RequestInit = {}): Promise<{ status: number; bytes: number }> {
  const res = await p.fetch(new Request(`http://proxy.test/mod/${path}`, init));
  return { status: res.status, bytes: (await res.arrayBuffer()).byteLength };
}

const ZIP = "example.com/big/@v/v1.0.0.zip";

describe("bytes served", () => {
  test("a zip streamed while it downloads counts every byte sent, to every client", async () => {
    const { p, m } = proxy();
    const size = readFileSync(join(upDir, ZIP)).length;
    up.delayMs = 200; // both requests join the one download
    try {
      const got = await Promise.all([get(p, ZIP), get(p, ZIP)]);
      expect(got).toEqual([
        { status: 200, bytes: size },
        { status: 200, bytes: size },
      ]);
    } finally {
      up.delayMs = 0;
    }
    expect(m.get("modproxy_bytes_served")).toBe(2 * size);
    expect(m.get("modproxy_misses")).toBe(2);
    expect(m.get("modproxy_requests")).toBe(2);
  });

  test("from disk: the whole file, the range of a 206, nothing for HEAD or 304", async () => {
    const { p, m } = proxy();
    const size = readFileSync(join(upDir, ZIP)).length;
    await get(p, ZIP);
    const before = m.get("modproxy_bytes_served");
    expect(await get(p, ZIP)).toEqual({ status: 200, bytes: size });
    expect(await get(p, ZIP, { headers: { Range: "bytes=100-199" } })).toEqual({ status: 206, bytes: 100 });
    expect(await get(p, ZIP, { method: "HEAD" })).toEqual({ status: 200, bytes: 0 });
    const etag = (await p.fetch(new Request(`http://proxy.test/mod/${ZIP}`, { method: "HEAD" }))).headers.get("etag")!;
    expect(await get(p, ZIP, { headers: { "If-None-Match": etag } })).toEqual({ status: 304, bytes: 0 });
    expect(m.get("modproxy_bytes_served") - before).toBe(size + 100);
  });
});

describe("offline answers are counted", () => {
  test("computed list and @latest, stored files, and the sumdb", async () => {
    const warm = proxy();
    for (const f of ["example.com/lib/@v/v1.1.0.info", "example.com/lib/@v/v1.1.0.mod", "example.com/lib/@v/v1.0.0.info"]) expect((await get(warm.p, f)).status).toBe(200);
    mkdirSync(join(warm.dir, "sumdb/sum.test/lookup/example.com"), { recursive: true });
    writeFileSync(join(warm.dir, "sumdb/sum.test/lookup/example.com/lib@v1.1.0"), "lookup answer\n");
    // An offline proxy over the warm one's directory.
    const o = proxyOptions(warm.dir, up.url, { offline: true, sumdbs: [{ name: "sum.test", url: null }] });
    const off = createModProxy(o);
    const m = o.metrics;
    const answers = [
      await get(off, "example.com/lib/@v/list"),
      await get(off, "example.com/lib/@latest"),
      await get(off, "example.com/lib/@v/v1.1.0.mod"),
      await get(off, "sumdb/sum.test/lookup/example.com/lib@v1.1.0"),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(m.get("modproxy_requests")).toBe(3);
    expect(m.get("modproxy_hits")).toBe(3);
    expect(m.get("modproxy_bytes_served")).toBe(answers[0]!.bytes + answers[1]!.bytes + answers[2]!.bytes);
    expect(m.get("sumdb_requests")).toBe(1);
    expect(m.get("sumdb_hits")).toBe(1);
    expect(m.get("sumdb_bytes_served")).toBe(answers[3]!.bytes);
    expect((await get(off, "sumdb/sum.test/lookup/example.com/nope@v1.0.0")).status).toBe(404);
    expect((await get(off, "example.com/nope/@v/list")).status).toBe(404);
    expect([m.get("sumdb_requests"), m.get("sumdb_not_found"), m.get("modproxy_not_found")]).toEqual([2, 1, 1]);
  });
});
