// What the proxy makes of its upstreams' answers, against fake upstreams
// (in-process Bun.serve): a 404 whose body never ends, a list that is an
// HTML page, checksum-database answers of the wrong shape (and tiles cut
// from a stored tile of the wrong size), and versions whose characters
// must be escaped again on the way to the upstream.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createModProxy, type ModProxy, type ModProxyOptions } from "../../src/modproxy/serve/proxy.ts";
import { validateSumdbAnswer } from "../../src/modproxy/sumdb/answers.ts";
import { tempDir } from "../helpers/env.ts";
import { proxyOptions, startRawUpstream, startUpstream, writeModule } from "./helpers.ts";

let root: ReturnType<typeof tempDir>;
let n = 0;

beforeAll(() => {
  root = tempDir("gostash-upstream-answers-");
});

afterAll(() => root?.cleanup());

function freshDir(): string {
  return join(root.path, `store${++n}`);
}

/** A proxy handler over `upstream`, called in process; get() asks it for a path under /mod/. */
function proxyOver(dir: string, upstream: string, over: Partial<ModProxyOptions> = {}): { p: ModProxy; get(path: string): Promise<Response> } {
  const p = createModProxy(proxyOptions(dir, upstream, over));
  return { p, get: (path) => p.fetch(new Request(`http://127.0.0.1/mod/${path}`)) };
}

/** Rejects when `promise` has not settled within `ms` (a hang fails the test instead of timing it out). */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  return Promise.race([promise, Bun.sleep(ms).then(() => Promise.reject(new Error(`no answer within ${ms}ms`)))]);
}

const b64 = (bytes: number, fill: number) => Buffer.alloc(bytes, fill).toString("base64");
/** A signed tree note as sum.golang.org writes one (the signature is not checked here). */
const treeNote = (size: number) => `go.sum database tree\n${size}\n${b64(32, 1)}\n\n\u2014 sum.test ${b64(68, 2)}\n`;
const lookupAnswer = (module: string) => `3\n${module} v1.0.0 h1:${b64(32, 3)}\n${module} v1.0.0/go.mod h1:${b64(32, 4)}\n\n${treeNote(5)}`;

describe("a 404 whose body never ends", () => {
  test("fails as the upstream failing, within the timeout, for every request waiting on it", async () => {
    let asked = 0;
    const srv = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0,
      fetch() {
        asked++;
        const body = new ReadableStream<Uint8Array>({
          async pull(c) {
            c.enqueue(new TextEncoder().encode("not found: "));
            await Bun.sleep(60_000);
          },
        });
        return new Response(body, { status: 404 });
      },
    });
    try {
      const { get } = proxyOver(freshDir(), `http://127.0.0.1:${srv.port}`, { timeoutMs: 300 });
      const answers = await within(4000, Promise.all([get("example.com/a/@v/v1.0.0.mod"), get("example.com/a/@v/v1.0.0.mod")]));
      for (const r of answers) {
        expect(r.status).toBe(504);
        expect(await r.text()).toContain("body not read within 300ms");
      }
      expect(asked).toBe(1);
    } finally {
      srv.stop(true);
    }
  });

  test("a long 404 body is cut, not an error: the answer stays a 404", async () => {
    const srv = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(`gone: ${"x".repeat(1 << 20)}`, { status: 410 }) });
    try {
      const { get } = proxyOver(freshDir(), `http://127.0.0.1:${srv.port}`, { timeoutMs: 2000 });
      const r = await get("example.com/a/@v/v1.0.0.mod");
      expect(r.status).toBe(410);
      expect((await r.text()).startsWith("gone: xxx")).toBe(true);
    } finally {
      srv.stop(true);
    }
  });
});

describe("list", () => {
  test("an HTML page is refused and never replaces the stored list, which is served stale instead", async () => {
    const upDir = join(root.path, "list-up");
    writeModule(upDir, { path: "example.com/l", version: "v1.0.0", files: { "l.go": "package l\n" } });
    const up = startUpstream(upDir);
    const dir = freshDir();
    try {
      const { get } = proxyOver(dir, up.url, { listTtlMs: 0 });
      expect(await (await get("example.com/l/@v/list")).text()).toBe("v1.0.0\n");
      up.replace.set("/example.com/l/@v/list", new TextEncoder().encode("<!DOCTYPE html>\n<html><body>Sign in</body></html>\n"));
      const stale = await get("example.com/l/@v/list");
      expect(stale.status).toBe(200);
      expect(stale.headers.get("x-gostash-stale")).toBe("1");
      expect(await stale.text()).toBe("v1.0.0\n");
      expect(readFileSync(join(dir, "example.com/l/@v/list"), "utf8")).toBe("v1.0.0\n");
      // With no copy to fall back on, the page is an upstream failure.
      up.replace.set("/example.com/l2/@v/list", new TextEncoder().encode("<html></html>\n"));
      expect((await get("example.com/l2/@v/list")).status).toBe(502);
      expect(existsSync(join(dir, "example.com/l2/@v/list"))).toBe(false);
    } finally {
      up.stop();
    }
  });
});

describe("checksum-database answers", () => {
  const hashes = (count: number, fill: number) => new Uint8Array(count * 32).fill(fill);
  const answers: Record<string, Uint8Array | string> = {
    "/latest": "<html><body>Sign in</body></html>\n",
    "/tile/8/0/000": hashes(256, 1),
    "/tile/8/0/001": hashes(100, 1),
    "/tile/8/0/002.p/5": hashes(5, 2),
    "/tile/8/0/003.p/5": hashes(256, 2),
    "/tile/8/0/004.p/5": hashes(5, 4),
    "/tile/8/data/000": "records\n",
    "/tile/8/data/001": "",
    "/lookup/example.com/good@v1.0.0": lookupAnswer("example.com/good"),
    "/lookup/example.com/bad@v1.0.0": "<html></html>\n",
  };
  let db: ReturnType<typeof startRawUpstream>;
  beforeAll(() => {
    db = startRawUpstream((path) => (path in answers ? new Response(answers[path]!) : new Response("not found\n", { status: 404 })));
  });
  afterAll(() => db?.stop());

  const sumdbProxy = (dir: string) => proxyOver(dir, "off", { sumdbs: [{ name: "sum.test", url: db.url }] });

  test("tiles of the wrong size, empty data tiles, and lookups or latest that are not signed notes are refused and not stored", async () => {
    const dir = freshDir();
    const { get } = sumdbProxy(dir);
    for (const path of ["tile/8/0/000", "tile/8/0/002.p/5", "tile/8/data/000", "lookup/example.com/good@v1.0.0"]) {
      const r = await get(`sumdb/sum.test/${path}`);
      expect(r.status, path).toBe(200);
      expect(Buffer.from(await r.arrayBuffer()).equals(Buffer.from(answers[`/${path}`]!)), path).toBe(true);
    }
    for (const path of ["tile/8/0/001", "tile/8/0/003.p/5", "tile/8/data/001", "lookup/example.com/bad@v1.0.0", "latest"]) {
      const r = await get(`sumdb/sum.test/${path}`);
      expect(r.status, path).toBe(502);
      expect(await r.text(), path).toContain("refused upstream answer");
      expect(existsSync(join(dir, "sumdb/sum.test", path)), path).toBe(false);
    }
  });

  test("a partial tile is not cut from a stored tile of the wrong size", async () => {
    const dir = freshDir();
    const put = (rel: string, data: Uint8Array) => {
      mkdirSync(dirname(join(dir, rel)), { recursive: true });
      writeFileSync(join(dir, rel), data);
    };
    // A full tile 1000 bytes long (an old error page, a cut file): not a source.
    put("sumdb/sum.test/tile/8/0/004", new Uint8Array(1000).fill(0x78));
    // A good full tile still is: its prefix is answered without asking.
    put("sumdb/sum.test/tile/8/0/005", hashes(256, 5));
    const { get } = sumdbProxy(dir);
    const before = db.raw.length;
    const bad = await get("sumdb/sum.test/tile/8/0/004.p/5");
    expect(bad.status).toBe(200);
    expect(new Uint8Array(await bad.arrayBuffer())).toEqual(hashes(5, 4));
    expect(db.raw.slice(before)).toEqual(["/tile/8/0/004.p/5"]);
    const good = await get("sumdb/sum.test/tile/8/0/005.p/3");
    expect(new Uint8Array(await good.arrayBuffer())).toEqual(hashes(3, 5));
    expect(db.raw.slice(before)).toEqual(["/tile/8/0/004.p/5"]);
  });

  test("the shapes sum.golang.org answers with pass, and what is not one of them does not", () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    const ok = (path: string, data: Uint8Array | string) => validateSumdbAnswer(path, typeof data === "string" ? enc(data) : data);
    ok("latest", treeNote(1234));
    ok("lookup/example.com/m@v1.0.0", lookupAnswer("example.com/m"));
    ok("tile/8/1/000", hashes(256, 0));
    ok("tile/8/0/x001/234.p/255", hashes(255, 0));
    ok("tile/8/data/x001/234.p/3", "a\n");
    for (const [path, data] of [
      ["latest", ""],
      ["latest", "go.sum database tree\n5\nAAAA\n"],
      ["latest", "go.sum database tree\n5\nAAAA\n\n- sum.test AAAAAAAA\n"],
      ["lookup/example.com/m@v1.0.0", `${lookupAnswer("example.com/m")}<html>`],
      ["tile/8/0/000", hashes(255, 0)],
      ["tile/8/0/000.p/5", new Uint8Array(0)],
      ["tile/8/0/000.p/256", hashes(256, 0)],
      ["tile/8/data/000", ""],
    ] as const) {
      expect(() => ok(path, data), `${path} ${String(data).slice(0, 40)}`).toThrow();
    }
  });
});

describe("versions with characters a URL must escape", () => {
  test("reach the upstream escaped as the go command escapes them, once", async () => {
    const up = startRawUpstream();
    try {
      const { get } = proxyOver(freshDir(), up.url);
      for (const v of ["%23frag", "%2541", "a&b%3Dc"]) expect((await get(`example.com/a/@v/${v}.info`)).status, v).toBe(404);
      expect(up.raw).toEqual(["/example.com/a/@v/%23frag.info", "/example.com/a/@v/%2541.info", "/example.com/a/@v/a&b=c.info"]);
    } finally {
      up.stop();
    }
  });

  test("a sumdb lookup of v1.0.0#x asks the database about v1.0.0#x, and v1.0.0's answer is not stored under its name", async () => {
    const db = startRawUpstream((path) => (path === "/lookup/example.com/m@v1.0.0" ? new Response(lookupAnswer("example.com/m")) : new Response("not found\n", { status: 404 })));
    const dir = freshDir();
    try {
      const { get } = proxyOver(dir, "off", { sumdbs: [{ name: "sum.test", url: db.url }] });
      expect((await get("sumdb/sum.test/lookup/example.com/m@v1.0.0%23x")).status).toBe(404);
      expect(db.raw).toEqual(["/lookup/example.com/m@v1.0.0%23x"]);
      expect(existsSync(join(dir, "sumdb/sum.test/lookup/example.com/m@v1.0.0#x"))).toBe(false);
      expect((await get("sumdb/sum.test/lookup/example.com/m@v1.0.0")).status).toBe(200);
    } finally {
      db.stop();
    }
  });
});
