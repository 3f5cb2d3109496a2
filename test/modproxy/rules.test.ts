// Routing rules (--rules FILE) on the module proxy's handler, called in
// process: every action, first-match order, version filtering of list,
// @latest and queries, sumdb lookups, redirects, per-module upstreams
// (two local upstreams with request counters), reloading on rewrite and on
// rename-over, a bad file on reload keeping the old rules, offline mode.
// Plus the parts: version ranges, the file format (the module path globs of
// "match" are tested with the matcher, globs.test.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createConsola, type LogObject } from "consola/core";
import { createModProxy, type ModProxy, type ModProxyOptions } from "../../src/modproxy/serve/proxy.ts";
import { parseRules, RulesError } from "../../src/modproxy/rules/rules.ts";
import { RulesFile } from "../../src/modproxy/rules/rules-file.ts";
import { VersionRange } from "../../src/modproxy/rules/versions.ts";
import type { Logger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { tempDir } from "../helpers/env.ts";
import { parseUpstreams } from "../../src/modproxy/upstream/fetch.ts";
import { proxyOptions, startRawUpstream, startSumdb, startUpstream, writeModule, type Sumdb, type Upstream } from "./helpers.ts";

let t: ReturnType<typeof tempDir>;
let upA: Upstream;
let upB: Upstream;
let db: Sumdb;
let n = 0;

function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = createConsola({ level: 4, reporters: [{ log: (o: LogObject) => lines.push(`${o.type}: ${o.args.join(" ")}`) }] });
  return { logger, lines };
}

interface P {
  proxy: ModProxy;
  metrics: Metrics;
  lines: string[];
  rules: string;
  get(path: string, init?: RequestInit): Promise<Response>;
  text(path: string): Promise<{ status: number; body: string }>;
}

/** A proxy over upstream A (and the test sumdb) with these rules, checked on every request. */
function proxyWith(rules: unknown, over: Partial<ModProxyOptions> = {}): P {
  const file = join(t.path, `rules${++n}.json`);
  writeFileSync(file, typeof rules === "string" ? rules : JSON.stringify(rules));
  const metrics = new Metrics();
  const { logger, lines } = capturingLogger();
  const proxy = createModProxy(baseOptions({ sumdbs: [{ name: db.name, url: db.url }], metrics, logger, rulesFile: file, rulesCheckEveryMs: 0, ...over }));
  const get = (path: string, init?: RequestInit) => proxy.fetch(new Request(`http://127.0.0.1/mod/${path}`, init));
  return {
    proxy,
    metrics,
    lines,
    rules: file,
    get,
    text: async (path) => {
      const r = await get(path);
      return { status: r.status, body: await r.text() };
    },
  };
}

beforeAll(async () => {
  t = tempDir("gostash-rules-");
  const a = join(t.path, "upA");
  const b = join(t.path, "upB");
  for (const v of ["v1.0.0", "v1.1.0", "v1.2.0", "v2.0.0-rc.1"]) {
    writeModule(a, { path: "example.com/lib", version: v, files: { "lib.go": `package lib\n\nconst V = "${v}"\n` } });
  }
  // @latest and a query, as an upstream answers them.
  writeFileSync(join(a, "example.com/lib/@latest"), '{"Version":"v1.2.0","Time":"2024-01-02T03:04:05Z"}\n');
  writeFileSync(join(a, "example.com/lib/@v/master.info"), '{"Version":"v1.2.0","Time":"2024-01-02T03:04:05Z"}\n');
  writeFileSync(join(a, "example.com/lib/@v/old.info"), '{"Version":"v1.1.0","Time":"2024-01-02T03:04:05Z"}\n');
  writeModule(a, { path: "example.com/dep", version: "v1.0.0", files: { "dep.go": "package dep\n" } });
  writeModule(a, { path: "example.com/bad", version: "v1.0.0", files: { "bad.go": "package bad\n" } });
  writeModule(a, { path: "example.com/Upper/Case", version: "v1.0.0", files: { "c.go": "package Case\n" } });
  // Only upstream B has the corp module.
  writeModule(b, { path: "corp.example.com/team/x", version: "v1.0.0", files: { "x.go": "package x\n" } });
  upA = startUpstream(a);
  upB = startUpstream(b);
  db = await startSumdb(a);
}, 240_000);

afterAll(() => {
  upA?.stop();
  upB?.stop();
  db?.stop();
  t?.cleanup();
});

describe("actions", () => {
  test("exclude: 403 naming the rule for every request about the module, the upstream never asked, counted", async () => {
    const p = proxyWith({ rules: [{ match: "example.com/bad", action: "exclude", name: "no-bad", reason: "see SEC-12" }] });
    const before = upA.count("/example.com/bad/@v/v1.0.0.zip") + upA.count("/example.com/bad/@v/list");
    for (const path of ["example.com/bad/@v/list", "example.com/bad/@latest", "example.com/bad/@v/v1.0.0.info", "example.com/bad/@v/v1.0.0.mod", "example.com/bad/@v/v1.0.0.zip"]) {
      const r = await p.text(path);
      expect(r.status, path).toBe(403);
      expect(r.body).toBe('gostash: module example.com/bad is excluded by "no-bad": see SEC-12\n');
    }
    expect(upA.count("/example.com/bad/@v/v1.0.0.zip") + upA.count("/example.com/bad/@v/list")).toBe(before);
    // Other modules are served.
    expect((await p.text("example.com/dep/@v/v1.0.0.mod")).status).toBe(200);
    expect(p.metrics.get("modproxy_rules_excluded")).toBe(5);
  });

  test("exclude applies to checksum-database lookups of the module; other lookups and tiles pass", async () => {
    const p = proxyWith({ rules: [{ match: "example.com/bad", action: "exclude" }] });
    const r = await p.text(`sumdb/${db.name}/lookup/example.com/bad@v1.0.0`);
    expect(r.status).toBe(403);
    expect(r.body).toContain('module example.com/bad is excluded by rule #1 ("example.com/bad")');
    expect(Object.keys(await db.counts()).some((k) => k.includes("example.com/bad"))).toBe(false);
    const ok = await p.text(`sumdb/${db.name}/lookup/example.com/dep@v1.0.0`);
    expect(ok.status).toBe(200);
    expect(ok.body).toContain("example.com/dep v1.0.0 h1:");
    expect((await p.get(`sumdb/${db.name}/latest`)).status).toBe(200);
  });

  test("rules are tried in order, the first match decides; globs match path prefixes like GOPRIVATE", async () => {
    const p = proxyWith({
      default: "exclude",
      rules: [
        { match: "example.com/lib", action: "include" },
        { match: "example.com", action: "exclude", name: "rest-of-example" },
        { match: "example.com/dep", action: "include" }, // never reached
      ],
    });
    expect((await p.text("example.com/lib/@v/v1.0.0.mod")).status).toBe(200);
    const dep = await p.text("example.com/dep/@v/v1.0.0.mod");
    expect(dep.status).toBe(403);
    expect(dep.body).toContain('"rest-of-example"');
    const other = await p.text("corp.example.com/team/x/@v/list");
    expect(other.status).toBe(403);
    expect(other.body).toContain("the default rule");
  });

  test("versions and deny: list filtered, refused versions 403 everywhere, allowed ones served", async () => {
    const p = proxyWith({ rules: [{ match: "example.com/lib", versions: "<v1.2.0", deny: ["v1.0.0"], reason: "v1.2.0 breaks the build" }] });
    const list = await p.text("example.com/lib/@v/list");
    expect(list.status).toBe(200);
    expect(list.body).toBe("v1.1.0\n");
    expect(p.metrics.get("modproxy_rules_list_filtered")).toBe(3);
    // HEAD: same headers, no body.
    const head = await p.get("example.com/lib/@v/list", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("7");
    expect(await head.text()).toBe("");
    for (const path of ["example.com/lib/@v/v1.2.0.info", "example.com/lib/@v/v1.2.0.mod", "example.com/lib/@v/v1.2.0.zip", "example.com/lib/@v/v1.0.0.zip"]) {
      const r = await p.text(path);
      expect(r.status, path).toBe(403);
      expect(r.body).toMatch(/^gostash: example\.com\/lib@v1\.[02]\.0 is refused by rule #1 \("example\.com\/lib"\) \(allowed versions "<v1\.2\.0"; denied v1\.0\.0\): v1\.2\.0 breaks the build\n$/);
    }
    const zip = await p.get("example.com/lib/@v/v1.1.0.zip");
    expect(zip.status).toBe(200);
    expect((await zip.arrayBuffer()).byteLength).toBeGreaterThan(0);
    // @latest and a query resolving to a refused version; a query resolving to an allowed one.
    const latest = await p.text("example.com/lib/@latest");
    expect(latest.status).toBe(403);
    expect(latest.body).toContain("example.com/lib@v1.2.0 is refused");
    expect((await p.text("example.com/lib/@v/master.info")).status).toBe(403);
    const old = await p.text("example.com/lib/@v/old.info");
    expect(old.status).toBe(200);
    expect(JSON.parse(old.body).Version).toBe("v1.1.0");
    // Sumdb lookups of refused versions too.
    expect((await p.text(`sumdb/${db.name}/lookup/example.com/lib@v1.2.0`)).status).toBe(403);
    expect((await p.text(`sumdb/${db.name}/lookup/example.com/lib@v1.1.0`)).status).toBe(200);
    // The store keeps the upstream's list unfiltered: the filter is applied on the way out.
    expect(await Bun.file(join(p.proxy.store.dir, "example.com/lib/@v/list")).text()).toContain("v1.2.0");
  });

  test("redirect: 307 to the other proxy with the same (case-encoded) path, nothing fetched", async () => {
    const p = proxyWith({ rules: [{ match: "example.com/Upper", action: "redirect", to: "https://goproxy.example.net/base/" }] });
    const before = upA.count("/example.com/!upper/!case/@v/v1.0.0.zip");
    for (const path of ["example.com/!upper/!case/@v/v1.0.0.zip", "example.com/!upper/!case/@v/list", "example.com/!upper/!case/@latest"]) {
      const r = await p.get(path);
      expect(r.status).toBe(307);
      expect(r.headers.get("location")).toBe(`https://goproxy.example.net/base/${path}`);
    }
    expect(upA.count("/example.com/!upper/!case/@v/v1.0.0.zip")).toBe(before);
    expect(p.metrics.get("modproxy_rules_redirected")).toBe(3);
  });

  test("upstream: matching modules come from the rule's upstream list, the rest from --upstream", async () => {
    const p = proxyWith({ rules: [{ match: "*.example.com", action: "upstream", upstream: `${upB.url},${upA.url}` }] });
    const aCorp = upA.count("/corp.example.com/team/x/@v/v1.0.0.zip");
    const bCorp = upB.count("/corp.example.com/team/x/@v/v1.0.0.zip");
    const bDep = upB.count("/example.com/dep/@v/v1.0.0.zip");
    const zip = await p.get("corp.example.com/team/x/@v/v1.0.0.zip");
    expect(zip.status).toBe(200);
    await zip.arrayBuffer();
    expect(upB.count("/corp.example.com/team/x/@v/v1.0.0.zip")).toBe(bCorp + 1);
    expect(upA.count("/corp.example.com/team/x/@v/v1.0.0.zip")).toBe(aCorp);
    expect((await p.text("corp.example.com/team/x/@v/list")).body).toBe("v1.0.0\n");
    const dep = await p.get("example.com/dep/@v/v1.0.0.zip");
    expect(dep.status).toBe(200);
    await dep.arrayBuffer();
    expect(upB.count("/example.com/dep/@v/v1.0.0.zip")).toBe(bDep);
    expect(p.metrics.get("modproxy_rules_upstream_fetches")).toBe(2);

    // Without the rule the corp module is unknown upstream (A does not have it).
    const plain = proxyWith({ rules: [] });
    expect((await plain.text("corp.example.com/team/x/@v/v1.0.0.mod")).status).toBe(404);
  });

  test("an upstream rule may carry version constraints", async () => {
    const p = proxyWith({ rules: [{ match: "example.com/lib", action: "upstream", upstream: upA.url, deny: ["v1.2.0"] }] });
    expect((await p.text("example.com/lib/@v/list")).body).toBe("v1.0.0\nv1.1.0\nv2.0.0-rc.1\n");
    expect((await p.text("example.com/lib/@v/v1.2.0.mod")).status).toBe(403);
  });

  test("upstream: a version with percent-escapes still goes to the rule's upstream, never to --upstream", async () => {
    // The rule used to be decided by decoding the already decoded path a
    // second time: "%25zz" became "%zz" (a decoding error) and "%2541"
    // became "A" (not an escaped version), both fell back to --upstream,
    // and the private path went to the public proxy.
    const ruleUp = startRawUpstream();
    const publicUp = startRawUpstream();
    try {
      const p = proxyWith({ rules: [{ match: "corp.example.com", action: "upstream", upstream: ruleUp.url }] }, { upstreams: parseUpstreams(publicUp.url) });
      for (const v of ["%25zz", "%2541"]) expect((await p.text(`corp.example.com/team/x/@v/${v}.info`)).status, v).toBe(404);
      expect(publicUp.raw).toEqual([]);
      expect(ruleUp.raw).toEqual(["/corp.example.com/team/x/@v/%25zz.info", "/corp.example.com/team/x/@v/%2541.info"]);
    } finally {
      ruleUp.stop();
      publicUp.stop();
    }
  });
});

describe("reloading", () => {
  test("a rewritten file and a file renamed over it take effect; reloads are counted", async () => {
    const p = proxyWith({ rules: [{ match: "example.com/dep", action: "exclude" }] });
    expect((await p.text("example.com/dep/@v/v1.0.0.mod")).status).toBe(403);
    writeFileSync(p.rules, JSON.stringify({ rules: [{ match: "example.com/dep", action: "include" }] }));
    expect((await p.text("example.com/dep/@v/v1.0.0.mod")).status).toBe(200);
    expect(p.metrics.get("modproxy_rules_reloads")).toBe(1);
    // As editors do: write a new file, rename it over the old one.
    const tmp = `${p.rules}.swp`;
    writeFileSync(tmp, JSON.stringify({ rules: [{ match: "example.com/dep", action: "exclude", name: "renamed" }] }));
    renameSync(tmp, p.rules);
    const r = await p.text("example.com/dep/@v/v1.0.0.mod");
    expect(r.status).toBe(403);
    expect(r.body).toContain('"renamed"');
    expect(p.metrics.get("modproxy_rules_reloads")).toBe(2);
  });

  test("a rewrite of the same size right after a read is seen, though the file system's coarse clock may leave the file's times as they were", async () => {
    // Linux stamps files with a coarse clock (up to 10 ms a tick): two writes
    // in one tick leave size, mtime and ctime equal. So a file read within
    // 100 ms of its last change is read again at the next check.
    const file = join(t.path, `racy${++n}.json`);
    const rules = (action: string) => JSON.stringify({ rules: [{ match: "example.com/dep", action }] });
    const metrics = new Metrics();
    for (let round = 0; round < 20; round++) {
      writeFileSync(file, rules("exclude"));
      const rf = new RulesFile(file, { metrics, logger: capturingLogger().logger, checkEveryMs: 0 });
      writeFileSync(file, rules("include")); // same length as "exclude"
      expect(rf.current().rules[0]!.action).toBe("include");
      // Read again while racy, the same text is not a reload.
      const reloads = metrics.get("modproxy_rules_reloads");
      rf.current();
      rf.current();
      expect(metrics.get("modproxy_rules_reloads")).toBe(reloads);
    }
    expect(metrics.get("modproxy_rules_reloads")).toBe(20);
  });

  test("a file that fails to parse on reload keeps the previous rules and logs one error", async () => {
    const p = proxyWith({ rules: [{ match: "example.com/dep", action: "exclude" }] });
    expect((await p.text("example.com/dep/@v/v1.0.0.mod")).status).toBe(403);
    writeFileSync(p.rules, '{"rules": [{"match": "example.com/dep", "action": "include",}]}');
    for (let i = 0; i < 3; i++) expect((await p.text("example.com/dep/@v/v1.0.0.mod")).status).toBe(403);
    expect(p.metrics.get("modproxy_rules_reload_errors")).toBe(1);
    const errors = p.lines.filter((l) => l.startsWith("error:"));
    expect(errors.length).toBe(1);
    expect(errors[0]).toContain(`--rules ${p.rules}: not reloaded, the previous rules stay in force: not valid JSON`);
    // A valid but wrong file (unknown action) is refused the same way.
    writeFileSync(p.rules, JSON.stringify({ rules: [{ match: "example.com/dep", action: "allow" }] }));
    expect((await p.text("example.com/dep/@v/v1.0.0.mod")).status).toBe(403);
    expect(p.metrics.get("modproxy_rules_reload_errors")).toBe(2);
    expect(p.lines.filter((l) => l.startsWith("error:")).at(-1)).toContain('rule #1: unknown action "allow"');
    // A removed file too; then a good file is picked up again.
    const { rmSync } = await import("node:fs");
    rmSync(p.rules);
    expect((await p.text("example.com/dep/@v/v1.0.0.mod")).status).toBe(403);
    expect(p.metrics.get("modproxy_rules_reload_errors")).toBe(3);
    writeFileSync(p.rules, JSON.stringify({ rules: [] }));
    expect((await p.text("example.com/dep/@v/v1.0.0.mod")).status).toBe(200);
  });

  test("a bad file at start-up is a configuration error naming the file and the problem", () => {
    expect(() => proxyWith('{"rules": [{"match": "example.com/[", "action": "exclude"}]}')).toThrow(/^config: --rules .*rules\d+\.json: rule #1: bad glob "example.com\/\[": unterminated \[$/);
    expect(() => proxyWith({ rules: [{ match: "x.com", action: "exclude" }], defualt: "exclude" })).toThrow('unknown field "defualt"');
    expect(() => createModProxy({ ...baseOptions(), rulesFile: join(t.path, "missing.json") })).toThrow(/^config: --rules .*missing\.json: ENOENT/);
  });
});

/** Upstream A, nothing cached for any time, so that every request shows the rules at work. */
function baseOptions(over: Partial<ModProxyOptions> = {}): ModProxyOptions {
  return proxyOptions(join(t.path, `p${++n}`), upA.url, { listTtlMs: 0, notFoundTtlMs: 0, logger: capturingLogger().logger, ...over });
}

describe("offline mode", () => {
  test("exclude and version rules still apply to answers from the store", async () => {
    // Fill a store online, then serve it offline with rules.
    const online = proxyWith({ rules: [] });
    for (const v of ["v1.0.0", "v1.1.0", "v1.2.0"]) expect((await online.text(`example.com/lib/@v/${v}.info`)).status).toBe(200);
    expect((await online.text("example.com/bad/@v/v1.0.0.info")).status).toBe(200);
    const p = proxyWith({ rules: [{ match: "example.com/bad", action: "exclude" }, { match: "example.com/lib", versions: "<v1.2" }] }, { dir: online.proxy.store.dir, offline: true });
    expect((await p.text("example.com/lib/@v/list")).body).toBe("v1.0.0\nv1.1.0\n");
    const latest = await p.text("example.com/lib/@latest");
    expect(latest.status).toBe(403);
    expect(latest.body).toContain("example.com/lib@v1.2.0 is refused");
    expect((await p.text("example.com/lib/@v/v1.2.0.info")).status).toBe(403);
    expect((await p.text("example.com/lib/@v/v1.1.0.info")).status).toBe(200);
    expect((await p.text("example.com/bad/@v/v1.0.0.info")).status).toBe(403);
  });
});

describe("version ranges", () => {
  test("comparators, alternatives, short versions, prereleases and pseudo-versions", () => {
    const r = new VersionRange(">=v1.2.0 <v2");
    expect(["v1.2.0", "v1.9.9", "v2.0.0-rc.1"].map((v) => r.allows(v))).toEqual([true, true, true]);
    expect(["v1.1.9", "v2.0.0", "v1.2.0-pre", "v0.0.0-20240102030405-abcdefabcdef"].map((v) => r.allows(v))).toEqual([false, false, false, false]);
    const alt = new VersionRange("<v1.4 || >= v1.5.1");
    expect(["v1.3.9", "v1.4.0", "v1.5.0", "v1.5.1"].map((v) => alt.allows(v))).toEqual([true, false, false, true]);
    expect(new VersionRange("v1.3.1").allows("v1.3.1")).toBe(true);
    expect(new VersionRange("!=v1.3.1").allows("v1.3.1")).toBe(false);
    expect(new VersionRange("<=v2.0.0").allows("v2.0.0+incompatible")).toBe(true);
    for (const bad of ["", ">=1.2.0", "v1.2.3.4", "<v1 ||", "~v1.2"]) expect(() => new VersionRange(bad), bad).toThrow();
  });
});

describe("the file format", () => {
  test("errors name the rule and the field", () => {
    const bad: [unknown, string][] = [
      [[], "must be a JSON object"],
      [{ rules: {} }, '"rules" must be an array'],
      [{ rules: [{ action: "exclude" }] }, 'rule #1: "match" must be a string or an array of strings'],
      [{ rules: [{ match: "" }] }, 'rule #1: "match" is empty'],
      [{ rules: [{ match: "a.com", action: "exclude", versions: "<v2" }] }, 'rule #1: "versions" and "deny" go with "include" or "upstream", not "exclude"'],
      [{ rules: [{ match: "a.com", deny: ["v1"] }] }, 'rule #1: "deny": "v1" is not a full version (like v1.0.0)'],
      [{ rules: [{ match: "a.com", versions: ">=banana" }] }, 'rule #1: "banana" is not a semantic version'],
      [{ rules: [{ match: "a.com", action: "upstream" }] }, 'rule #1: action "upstream" needs "upstream"'],
      [{ rules: [{ match: "a.com", action: "upstream", upstream: "direct" }] }, 'rule #1: "upstream": "direct" is not supported'],
      [{ rules: [{ match: "a.com", action: "redirect", to: "ftp://x" }] }, 'rule #1: action "redirect" needs "to"'],
      [{ rules: [{ match: "a.com", to: "https://x" }] }, 'rule #1: "to" goes with action "redirect"'],
      [{ default: { match: "a.com", action: "exclude" } }, 'default: has no "match"'],
      [{ default: "deny" }, 'default: unknown action "deny"'],
    ];
    for (const [doc, msg] of bad) {
      expect(() => parseRules(JSON.stringify(doc)), JSON.stringify(doc)).toThrow(RulesError);
      expect(() => parseRules(JSON.stringify(doc)), JSON.stringify(doc)).toThrow(msg);
    }
  });

  test("defaults: no file content but {} includes everything; match may be an array", () => {
    const s = parseRules("{}");
    expect(s.ruleFor("a.com/x").action).toBe("include");
    const s2 = parseRules(JSON.stringify({ default: { action: "upstream", upstream: "https://a.example" }, rules: [{ match: ["a.com", "b.com/x"], action: "exclude", comment: "why" }] }));
    expect(s2.ruleFor("b.com/x/y").action).toBe("exclude");
    expect(s2.ruleFor("b.com/y").action).toBe("upstream");
    expect(s2.ruleFor("b.com/y").upstreams?.[0]?.url).toBe("https://a.example");
  });

  test("spaces around the globs of match are dropped, in a string and in an array", () => {
    const s = parseRules(JSON.stringify({ rules: [{ match: "a.com, b.com ", action: "exclude" }, { match: [" c.com", "d.com/x "], action: "exclude" }] }));
    for (const m of ["a.com/x", "b.com/x", "c.com", "d.com/x/y"]) expect(s.ruleFor(m).action, m).toBe("exclude");
    expect(s.ruleFor("d.com/y").action).toBe("include");
    expect(s.ruleFor("b.com/x").label).toBe('rule #1 ("a.com,b.com")');
  });
});
