// Private modules in process: the proxy handler with --private, the real go
// command and a real git repository made here (src/modproxy/private.ts);
// the flag/env resolution of --private (GOPRIVATE fallback); credential
// redaction in error messages; the semaphore that bounds the go commands.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Flags } from "../../src/config/flags.ts";
import { modproxyFlags } from "../../src/config/options.ts";
import { modproxyConfig } from "../../src/modproxy/config.ts";
import { createModProxy, type ModProxy, type ModProxyOptions } from "../../src/modproxy/serve/proxy.ts";
import { cleanMessage, redactCredentials } from "../../src/modproxy/upstream/private.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { Semaphore } from "../../src/util/semaphore.ts";
import { tempDir } from "../helpers/env.ts";
import { makeGitModule, writeGitConfig } from "./git.ts";
import { proxyOptions, startUpstream, writeTestModules, type Upstream } from "./helpers.ts";

const PRIV = "corp.example.com/team/tool.git";

describe("--private configuration", () => {
  const cfg = (flags: Record<string, string>, env: Record<string, string>) =>
    modproxyConfig(Flags.resolve(modproxyFlags, { modproxy: true, ...flags }, env), "/cache")!.private;

  test("GOSTASH_PRIVATE, else GOPRIVATE; the flag beats both; nothing set means no private modules", () => {
    expect(cfg({}, {})).toBeNull();
    expect(cfg({}, { GOPRIVATE: ",," })).toBeNull();
    expect(cfg({}, { GOPRIVATE: "corp.example.com" })?.patterns).toBe("corp.example.com");
    expect(cfg({}, { GOPRIVATE: "corp.example.com", GOSTASH_PRIVATE: "git.example.org" })?.patterns).toBe("git.example.org");
    expect(cfg({ private: "*.internal" }, { GOPRIVATE: "corp.example.com", GOSTASH_PRIVATE: "git.example.org" })?.patterns).toBe("*.internal");
  });

  test("defaults: module cache beside the proxy's directory, 4 at a time, 2m", () => {
    expect(cfg({ private: "corp.example.com" }, {})).toEqual({ patterns: "corp.example.com", modcache: "/cache/private-gomodcache", concurrency: 4, timeoutMs: 120_000 });
    const c = cfg({ private: "x.io", "private-modcache": "/m", "private-concurrency": "2", "private-timeout": "30s", "modproxy-dir": "/elsewhere/mp" }, {});
    expect(c).toEqual({ patterns: "x.io", modcache: "/m", concurrency: 2, timeoutMs: 30_000 });
    expect(cfg({ private: "x.io", "modproxy-dir": "/elsewhere/mp" }, {})?.modcache).toBe("/elsewhere/private-gomodcache");
    expect(() => cfg({ private: "x.io", "private-concurrency": "0" }, {})).toThrow("--private-concurrency must be at least 1, got 0");
    // A bad glob, from the flag or the environment, stops the command with the flag named.
    expect(() => cfg({ private: "corp.example.com,[" }, {})).toThrow('config: --private: bad glob "[": unterminated [');
    expect(() => cfg({}, { GOPRIVATE: "corp.example.com/[z-a]" })).toThrow("range z-a is backwards");
  });
});

describe("redactCredentials", () => {
  test("user:password and token-only URLs lose their credentials; the rest is left alone", () => {
    expect(redactCredentials("git ls-remote -q https://alice:s3cret@git.corp.example.com/team/tool in /x: exit status 128")).toBe(
      "git ls-remote -q https://***@git.corp.example.com/team/tool in /x: exit status 128",
    );
    expect(redactCredentials("fetch http://ghp_abc123@github.com/o/r and ssh://git@host:22/r.git")).toBe("fetch http://***@github.com/o/r and ssh://***@host:22/r.git");
    expect(redactCredentials("HTTPS://U:P@H/x")).toBe("HTTPS://***@H/x");
    const plain = "corp.example.com/team/tool.git@v9.9.9: invalid version: unknown revision v9.9.9 (see https://golang.org/doc/faq#git_https, user@example.com)";
    expect(redactCredentials(plain)).toBe(plain);
  });

  test("cleanMessage: no go: prefixes, credentials or module cache path, and a bounded length", () => {
    const raw =
      "go: corp.example.com/team/tool.git@v1.0.0: git fetch -f https://bob:tok@git.corp.example.com/team/tool in /srv/cache/private-gomodcache/cache/vcs/0123: exit status 128:\n" +
      "\tfatal: unable to access 'https://git.corp.example.com/team/tool/': The requested URL returned error: 403\n";
    expect(cleanMessage(raw, "/srv/cache/private-gomodcache")).toBe(
      "corp.example.com/team/tool.git@v1.0.0: git fetch -f https://***@git.corp.example.com/team/tool in $GOMODCACHE/cache/vcs/0123: exit status 128:\n" +
        "\tfatal: unable to access 'https://git.corp.example.com/team/tool/': The requested URL returned error: 403",
    );
    expect(cleanMessage("x".repeat(5000), "/m").length).toBe(2003);
  });
});

describe("Semaphore", () => {
  test("never more than the limit at once, and everyone gets a turn", async () => {
    const s = new Semaphore(2);
    let now = 0;
    let most = 0;
    const done = await Promise.all(
      Array.from({ length: 9 }, (_, i) =>
        s.run(async () => {
          most = Math.max(most, ++now);
          await Bun.sleep(1 + (i % 3));
          now--;
          return i;
        }),
      ),
    );
    expect(done).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(most).toBe(2);
    expect(s.running).toBe(0);
  });
});

describe("handler with --private, in process, real go and git", () => {
  let t: ReturnType<typeof tempDir>;
  let up: Upstream;
  let metrics: Metrics;
  let proxy: ModProxy;
  let store: string;
  let goEnv: Record<string, string | undefined>;

  const get = async (p: ModProxy, path: string) => {
    const r = await p.fetch(new Request(`http://proxy/mod/${path}`));
    return { status: r.status, body: new Uint8Array(await r.arrayBuffer()) };
  };
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  /** The store and the go command's module cache are shared by the proxies made here. */
  const options = (over: Partial<ModProxyOptions>): ModProxyOptions =>
    proxyOptions(store, up.url, {
      sumdbs: [{ name: "sum.test", url: up.url }],
      private: { patterns: "corp.example.com", modcache: join(t.path, "gomodcache"), concurrency: 2, timeoutMs: 120_000, env: goEnv },
      ...over,
    });

  beforeAll(async () => {
    t = tempDir("gostash-private-unit-");
    const upDir = join(t.path, "up");
    writeTestModules(upDir);
    up = startUpstream(upDir);
    const repo = join(t.path, "git", "tool");
    await makeGitModule(repo, [
      { tag: "v1.0.0", files: { "go.mod": `module ${PRIV}\n\ngo 1.22\n`, "tool.go": "package tool\n\nconst V = 1\n" } },
      { tag: "v1.1.0", files: { "tool.go": "package tool\n\nconst V = 2\n" } },
    ]);
    const gitConfig = join(t.path, "gitconfig");
    writeGitConfig(gitConfig, { "https://corp.example.com/team/tool": `file://${repo}` });
    goEnv = { ...process.env, HOME: join(t.path, "home"), GIT_CONFIG_GLOBAL: gitConfig, GIT_CONFIG_NOSYSTEM: "1", GOENV: "off" };
    store = join(t.path, "store");
    metrics = new Metrics();
    proxy = createModProxy(options({ metrics }));
  }, 120_000);

  afterAll(() => {
    up?.stop();
    t?.cleanup();
  });

  test("concurrent requests for one private zip run one go command; the .info and .mod then come from its module cache", async () => {
    const answers = await Promise.all(Array.from({ length: 6 }, () => get(proxy, `${PRIV}/@v/v1.0.0.zip`)));
    for (const a of answers) expect(a.status).toBe(200);
    for (const a of answers) expect(Buffer.from(a.body).equals(Buffer.from(answers[0]!.body))).toBe(true);
    expect(metrics.get("modproxy_private_fetches")).toBe(1);
    expect(text((await get(proxy, `${PRIV}/@v/v1.0.0.mod`)).body)).toBe(`module ${PRIV}\n\ngo 1.22\n`);
    expect(JSON.parse(text((await get(proxy, `${PRIV}/@v/v1.0.0.info`)).body)).Version).toBe("v1.0.0");
    expect(metrics.get("modproxy_private_fetches")).toBe(1);
    expect(metrics.get("modproxy_private_modcache_hits")).toBe(2);
    for (const f of ["zip", "mod", "info"]) expect(existsSync(join(store, PRIV, `@v/v1.0.0.${f}`)), f).toBe(true);
    expect(up.hits.size).toBe(0);
  }, 120_000);

  test("queries are answered by the go command and not stored; public modules still come from the upstream", async () => {
    // .info and .mod of a new version asked at once: one `go list -m` for both, no zip made.
    const before = metrics.get("modproxy_private_fetches");
    const [i, m] = await Promise.all([get(proxy, `${PRIV}/@v/v1.1.0.info`), get(proxy, `${PRIV}/@v/v1.1.0.mod`)]);
    expect([i.status, m.status]).toEqual([200, 200]);
    expect(metrics.get("modproxy_private_fetches")).toBe(before + 1);
    expect(existsSync(join(t.path, "gomodcache/cache/download", PRIV, "@v/v1.1.0.zip"))).toBe(false);

    const main = await get(proxy, `${PRIV}/@v/main.info`);
    expect(main.status).toBe(200);
    const info = JSON.parse(text(main.body));
    expect(info.Version).toBe("v1.1.0");
    expect(info.Origin.Ref).toBe("refs/heads/main");
    expect(existsSync(join(store, PRIV, "@v/main.info"))).toBe(false);
    expect((await get(proxy, "example.com/lib/@v/v1.1.0.mod")).status).toBe(200);
    expect(up.count("/example.com/lib/@v/v1.1.0.mod")).toBe(1);
    expect([...up.hits.keys()].filter((p) => p.includes("corp.example.com"))).toEqual([]);
  }, 120_000);

  test("lookups of private paths are refused (403) before the checksum database; other lookups pass", async () => {
    const r = await get(proxy, `sumdb/sum.test/lookup/${PRIV}@v1.0.0`);
    expect(r.status).toBe(403);
    expect(text(r.body)).toContain("set GONOSUMDB=corp.example.com");
    // A case-encoded private path is recognised too.
    expect((await get(proxy, "sumdb/sum.test/lookup/corp.example.com/!team/x@v1.0.0")).status).toBe(403);
    expect(metrics.get("modproxy_private_sumdb_refused")).toBe(2);
    expect([...up.hits.keys()].filter((p) => p.includes("corp.example.com"))).toEqual([]);
    // A public lookup goes on to the database (here: the upstream, which has none: 404).
    expect((await get(proxy, "sumdb/sum.test/lookup/example.com/lib@v1.1.0")).status).toBe(404);
    expect(up.count("/lookup/example.com/lib@v1.1.0")).toBe(1);
  }, 120_000);

  test("offline, private modules are served from the store only, and lookups are still refused", async () => {
    const offMetrics = new Metrics();
    const off = createModProxy(options({ metrics: offMetrics, offline: true }));
    expect((await get(off, `${PRIV}/@v/v1.0.0.zip`)).status).toBe(200);
    // Computed from what is stored: v1.1.0's .info and .mod are, its zip is not.
    expect(text((await get(off, `${PRIV}/@v/list`)).body)).toBe("v1.0.0\nv1.1.0\n");
    expect((await get(off, `${PRIV}/@v/v1.1.0.zip`)).status).toBe(404);
    expect((await get(off, `${PRIV}/@v/main.info`)).status).toBe(404);
    expect((await get(off, `sumdb/sum.test/lookup/${PRIV}@v1.0.0`)).status).toBe(403);
    expect(offMetrics.get("modproxy_private_fetches")).toBe(0);
  }, 120_000);

  test("the go command's errors become 404 with its message, remembered like upstream 404s", async () => {
    const before = metrics.get("modproxy_private_fetches");
    const r = await get(proxy, `${PRIV}/@v/v0.9.0.mod`);
    expect(r.status).toBe(404);
    expect(text(r.body)).toContain("unknown revision v0.9.0");
    expect((await get(proxy, `${PRIV}/@v/v0.9.0.mod`)).status).toBe(404);
    expect(metrics.get("modproxy_private_fetches")).toBe(before + 1);
    expect(metrics.get("modproxy_private_not_found")).toBe(1);
    expect(metrics.get("modproxy_private_failures")).toBe(0);
    // The list came from the go command and was stored for the list TTL.
    expect(text((await get(proxy, `${PRIV}/@v/list`)).body)).toBe("v1.0.0\nv1.1.0\n");
    expect(readFileSync(join(store, PRIV, "@v/list"), "utf8")).toBe("v1.0.0\nv1.1.0\n");
  }, 120_000);
});
