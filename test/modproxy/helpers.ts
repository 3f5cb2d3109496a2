// Test fixtures for the module proxy: Go module zips built here (the
// golang.org/x/mod/zip layout: every entry "<module>@<version>/<file>"), a
// local upstream directory in the GOPROXY layout, an HTTP upstream serving
// it with per-path request counts and injectable faults, an upstream that
// records raw request targets, a local checksum database
// (test/fixtures/sumdb, Go, signed with a fresh key), and the options of a
// proxy handler called in process.
import { mkdirSync, readFileSync, writeFileSync, existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { ModProxyOptions } from "../../src/modproxy/serve/proxy.ts";
import { parseUpstreams } from "../../src/modproxy/upstream/fetch.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { ROOT, TOOLS, run } from "../helpers/env.ts";

export function escape(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `!${c.toLowerCase()}`);
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A zip (stored entries) with exactly these entry names. */
export function zipEntries(entries: Record<string, string | Uint8Array>): Uint8Array {
  const enc = new TextEncoder();
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const [name, content] of Object.entries(entries)) {
    const nameB = enc.encode(name);
    const data = typeof content === "string" ? enc.encode(content) : content;
    const crc = crc32(data);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(0x0800, 6); // UTF-8 names
    lh.writeUInt16LE(0, 8); // stored
    lh.writeUInt16LE(0, 10);
    lh.writeUInt16LE(0x21, 12);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(data.length, 18);
    lh.writeUInt32LE(data.length, 22);
    lh.writeUInt16LE(nameB.length, 26);
    lh.writeUInt16LE(0, 28);
    locals.push(lh, nameB, data);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(0x0800, 8);
    ch.writeUInt16LE(0, 10);
    ch.writeUInt16LE(0, 12);
    ch.writeUInt16LE(0x21, 14);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(data.length, 20);
    ch.writeUInt32LE(data.length, 24);
    ch.writeUInt16LE(nameB.length, 28);
    ch.writeUInt32LE(offset, 42);
    centrals.push(ch, nameB);
    offset += 30 + nameB.length + data.length;
  }
  const cdSize = centrals.reduce((n, b) => n + b.length, 0);
  const count = Object.keys(entries).length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(count, 8);
  end.writeUInt16LE(count, 10);
  end.writeUInt32LE(cdSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, ...centrals, end]);
}

/** A module zip as golang.org/x/mod/zip makes them. */
export function goZip(module: string, version: string, files: Record<string, string>): Uint8Array {
  const entries: Record<string, string> = {};
  for (const [name, text] of Object.entries(files)) entries[`${module}@${version}/${name}`] = text;
  return zipEntries(entries);
}

export interface ModuleSpec {
  path: string;
  version: string;
  /** Files of the module; go.mod is made from `requires` unless given. */
  files: Record<string, string>;
  requires?: Record<string, string>;
  time?: string;
}

export function goModText(m: ModuleSpec): string {
  if (m.files["go.mod"]) return m.files["go.mod"];
  const req = Object.entries(m.requires ?? {});
  return `module ${m.path}\n\ngo 1.22\n${req.length ? `\nrequire (\n${req.map(([p, v]) => `\t${p} ${v}\n`).join("")})\n` : ""}`;
}

/** Writes one module version into a GOPROXY-layout directory (and its list). */
export function writeModule(dir: string, m: ModuleSpec): void {
  const base = join(dir, escape(m.path), "@v");
  mkdirSync(base, { recursive: true });
  const mod = goModText(m);
  const files = { ...m.files, "go.mod": mod };
  writeFileSync(join(base, `${escape(m.version)}.mod`), mod);
  writeFileSync(join(base, `${escape(m.version)}.zip`), goZip(m.path, m.version, files));
  writeFileSync(join(base, `${escape(m.version)}.info`), JSON.stringify({ Version: m.version, Time: m.time ?? "2024-01-02T03:04:05Z" }) + "\n");
  const listFile = join(base, "list");
  const list = existsSync(listFile) ? readFileSync(listFile, "utf8").split("\n").filter(Boolean) : [];
  if (!list.includes(m.version)) list.push(m.version);
  writeFileSync(listFile, list.join("\n") + "\n");
}

/**
 * The small module graph of the tests:
 *   example.com/app (the main module, written by the test) requires
 *   example.com/lib v1.1.0      -> requires example.com/dep v1.0.0
 *   example.com/Upper/Case v1.0.0 (case-encoded as example.com/!upper/!case)
 * plus example.com/lib v1.0.0 (an older version for `go list -m -versions`).
 */
export function writeTestModules(dir: string): void {
  writeModule(dir, {
    path: "example.com/dep",
    version: "v1.0.0",
    files: { "dep.go": "package dep\n\n// Twice doubles n.\nfunc Twice(n int) int { return 2 * n }\n" },
  });
  writeModule(dir, {
    path: "example.com/lib",
    version: "v1.0.0",
    files: { "lib.go": "package lib\n\n// Answer is the answer.\nfunc Answer() int { return 41 }\n" },
  });
  writeModule(dir, {
    path: "example.com/lib",
    version: "v1.1.0",
    requires: { "example.com/dep": "v1.0.0" },
    files: { "lib.go": 'package lib\n\nimport "example.com/dep"\n\n// Answer is the answer.\nfunc Answer() int { return dep.Twice(21) }\n' },
  });
  writeModule(dir, {
    path: "example.com/Upper/Case",
    version: "v1.0.0",
    files: { "case.go": 'package Case\n\n// Name says hello.\nfunc Name() string { return "Upper/Case" }\n' },
  });
}

export function writeApp(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "go.mod"), "module example.com/app\n\ngo 1.22\n");
  writeFileSync(
    join(dir, "main.go"),
    'package main\n\nimport (\n\t"fmt"\n\n\tCase "example.com/Upper/Case"\n\t"example.com/lib"\n)\n\nfunc main() { fmt.Println(lib.Answer(), Case.Name()) }\n',
  );
}

export interface Upstream {
  url: string;
  port: number;
  /** Requests per path (URL pathname). */
  hits: Map<string, number>;
  count(pathSuffix: string): number;
  /** Answer these paths with these statuses. */
  status: Map<string, number>;
  /** Paths whose answer never comes (headers are never sent). */
  stall: Set<string>;
  /** Paths whose body is replaced. */
  replace: Map<string, Uint8Array>;
  /** Delay (ms) before every answer. */
  delayMs: number;
  stop(): void;
}

/** An HTTP module proxy serving a GOPROXY-layout directory at `/`. */
export function startUpstream(dir: string): Upstream {
  const hits = new Map<string, number>();
  const u: Upstream = {
    url: "",
    port: 0,
    hits,
    count: (suffix) => [...hits].filter(([p]) => p.endsWith(suffix)).reduce((n, [, c]) => n + c, 0),
    status: new Map(),
    stall: new Set(),
    replace: new Map(),
    delayMs: 0,
    stop: () => server.stop(true),
  };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const path = decodeURIComponent(new URL(req.url).pathname);
      hits.set(path, (hits.get(path) ?? 0) + 1);
      if (u.delayMs) await Bun.sleep(u.delayMs);
      if (u.stall.has(path)) {
        await new Promise<void>((r) => req.signal.addEventListener("abort", () => r()));
        return new Response("gone away", { status: 500 });
      }
      const st = u.status.get(path);
      if (st) return new Response(`status ${st} for ${path}\n`, { status: st });
      const rep = u.replace.get(path);
      if (rep) return new Response(rep);
      const file = join(dir, path);
      if (!file.startsWith(dir) || !existsSync(file) || !statSync(file).isFile()) return new Response("not found\n", { status: 404 });
      return new Response(Bun.file(file));
    },
  });
  u.port = server.port!;
  u.url = `http://127.0.0.1:${server.port}`;
  return u;
}

export interface RawUpstream {
  url: string;
  /** Request targets as they arrived (pathname and query, not decoded). */
  raw: string[];
  stop(): void;
}

/** An HTTP upstream that records each request's raw target and answers it with `answer` (default 404). */
export function startRawUpstream(answer: (rawPath: string) => Response = () => new Response("not found\n", { status: 404 })): RawUpstream {
  const raw: string[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch(req) {
      const u = new URL(req.url);
      raw.push(u.pathname + u.search);
      return answer(u.pathname);
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, raw, stop: () => server.stop(true) };
}

export interface Sumdb {
  name: string;
  vkey: string;
  url: string;
  counts(): Promise<Record<string, number>>;
  stop(): void;
}

/** Builds (once, into .tools/bin) and starts the test checksum database over `dir`. */
export async function startSumdb(dir: string, name = "sum.test"): Promise<Sumdb> {
  const bin = join(TOOLS, "bin", "gostash-test-sumdb");
  const src = join(ROOT, "test", "fixtures", "sumdb");
  const srcTime = Math.max(...["main.go", "go.mod"].map((f) => statSync(join(src, f)).mtimeMs));
  if (!existsSync(bin) || statSync(bin).mtimeMs < srcTime) {
    mkdirSync(dirname(bin), { recursive: true });
    const r = await run(["go", "build", "-mod=vendor", "-o", bin, "."], {
      cwd: src,
      env: { GOFLAGS: "-mod=vendor", GOTOOLCHAIN: "local", GOPROXY: "off", CGO_ENABLED: "0", GOWORK: "off" },
      timeoutMs: 180_000,
    });
    if (r.code !== 0) throw new Error(`building the test sumdb failed:\n${r.stderr}`);
  }
  const proc = Bun.spawn([bin, "-dir", dir, "-name", name], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  let line = "";
  const dec = new TextDecoder();
  const timer = setTimeout(() => proc.kill(9), 20_000);
  while (!line.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) throw new Error("test sumdb exited before printing its address");
    line += dec.decode(value);
  }
  clearTimeout(timer);
  reader.releaseLock();
  const [vkey, url] = line.trim().split(" ") as [string, string];
  return {
    name,
    vkey,
    url,
    counts: async () => (await (await fetch(`${url}/counts`)).json()) as Record<string, number>,
    stop: () => {
      proc.kill(9);
    },
  };
}

/** Options of a proxy handler called in process: `upstream` (a GOPROXY list), no retries, a quiet logger, fresh metrics; `over` for the rest. */
export function proxyOptions(dir: string, upstream: string, over: Partial<ModProxyOptions> = {}): ModProxyOptions {
  return {
    dir,
    upstreams: parseUpstreams(upstream),
    sumdbs: [],
    listTtlMs: 60_000,
    swrMs: 0,
    notFoundTtlMs: 60_000,
    timeoutMs: 5_000,
    retries: 0,
    metrics: new Metrics(),
    logger: createLogger({}),
    ...over,
  };
}
