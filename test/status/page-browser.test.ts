// The status page in a real headless Chromium, on the real compiled daemon
// after real traffic: a `go mod download` through its module proxy (local
// upstream and checksum database), then two `go build`s through `gostash
// connect` (cold, then from the daemon's cache), with a real bucket
// (versitygw) behind the build cache.
//
// Once the traffic has stopped and settled, every number the page shows
// (each [data-m] element keeps its exact value in data-value) must equal
// its /metrics sample fetched at that moment, the charts must have drawn
// lines, the browser must not have asked anything of any other origin, and
// a screenshot is kept in .artifacts/status-page.png (git-ignored).
//
// With a bucket nothing answers for, the page names the bucket's state and
// its last error with the cause.
//
// With tokens set, the page and its data answer 401 without one and 200
// with the read token, and a browser that gives the read token at the Basic
// prompt sees the page fill in.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "puppeteer-core";
import { launchChromium, type TestBrowser } from "../helpers/browser.ts";
import { BIN, ROOT, tempDir } from "../helpers/env.ts";
import { go, goEnv, writeDemoModule } from "../helpers/go.ts";
import { freePort, startS3Server, type S3Server } from "../helpers/s3server.ts";
import { closeLine, getLine, randomID, RawClient, startDaemon, type Daemon } from "../daemon/helpers.ts";
import { parsePrometheus, value, type Family } from "../http/prom-parse.ts";
import { goOK, modproxyServeArgs, proxyClientEnv } from "../modproxy/client.ts";
import { startSumdb, startUpstream, writeApp, writeTestModules, type Sumdb, type Upstream } from "../modproxy/helpers.ts";

// The callbacks below run in the page (puppeteer sends their source). The
// project's TypeScript has no DOM types, so puppeteer's element types are
// loose here and only `document` needs declaring.
declare const document: { body: { dataset: Record<string, string | undefined> } };

const MODULES = ["example.com/lib@v1.1.0", "example.com/dep@v1.0.0", "example.com/Upper/Case@v1.0.0"];
const SCREENSHOT = join(ROOT, ".artifacts", "status-page.png");
/** The y of a chart's zero line (charts.page.js: PLOT_H). */
const BASELINE = 80;

let root: ReturnType<typeof tempDir>;
let s3: S3Server;
let up: Upstream;
let db: Sumdb;
let daemon: Daemon;
let chromium: TestBrowser;

/** Every request the browser made, as URLs. */
const requested: string[] = [];
const pageErrors: string[] = [];

async function metricsNow(d: Daemon, headers: Record<string, string> = {}): Promise<Map<string, Family>> {
  return parsePrometheus(await (await fetch(`${d.http}/metrics`, { headers })).text());
}

/** A page metric's /metrics sample: hits by tier are labelled, gauges plain, counters _total; absent is 0. */
function sample(fams: Map<string, Family>, name: string): number {
  const tier = /^hits_(.+)$/.exec(name);
  const labelled = tier ? value(fams, "gostash_hits_total", { tier: tier[1]! }) : undefined;
  const gauge = fams.get(`gostash_${name}`);
  if (labelled !== undefined) return labelled;
  if (gauge?.type === "gauge") return gauge.samples[0]!.value;
  return value(fams, name.endsWith("_total") ? `gostash_${name}` : `gostash_${name}_total`) ?? 0;
}

/** What the page shows as text is what its value says: exact counts, bytes to the digit shown. */
function expectText(name: string, fmt: string | undefined, text: string, v: number): void {
  if (fmt !== "bytes") {
    expect(Number(text.replace(/,/g, "")), `${name} shows ${text}`).toBe(v);
    return;
  }
  const m = /^([\d.]+) (B|KiB|MiB|GiB|TiB)$/.exec(text);
  expect(m, `${name} shows ${text}`).not.toBeNull();
  const unit = 1024 ** ["B", "KiB", "MiB", "GiB", "TiB"].indexOf(m![2]!);
  expect(Math.abs(Number(m![1]) * unit - v), `${name} shows ${text} for ${v}`).toBeLessThanOrEqual(unit === 1 ? 0 : 0.05 * unit);
}

async function pollsOf(page: Page): Promise<number> {
  return page.evaluate(() => Number(document.body.dataset.polls ?? 0));
}

/** Waits until the page has finished `n` more polls than it had. */
async function morePolls(page: Page, n: number): Promise<void> {
  const target = (await pollsOf(page)) + n;
  await page.waitForFunction((t) => Number(document.body.dataset.polls ?? 0) >= t, { timeout: 30_000 }, target);
}

async function goBuild(name: string): Promise<void> {
  const mod = join(root.path, "demo");
  const env = goEnv({ gocache: join(root.path, `gocache-${name}`), prog: `${BIN} connect ${daemon.plugin}`, home: join(root.path, `home-${name}`) });
  const r = await go(["build", "-o", `${join(root.path, `bin-${name}`)}/`, "./..."], mod, env, 400_000);
  if (r.code !== 0) throw new Error(`go build (${name}) failed (${r.code}):\n${r.stderr}\n--- daemon:\n${daemon.stderr().slice(-3000)}`);
}

/** No go command connected, no upload waiting or running, and a history sample taken since. */
async function settled(d: Daemon): Promise<void> {
  const end = Date.now() + 60_000;
  for (;;) {
    const fams = await metricsNow(d);
    const doc = (await (await fetch(`${d.http}/status.json`)).json()) as { history: { series: Record<string, (number | null)[]> } };
    const gets = doc.history.series.gets ?? [];
    if (sample(fams, "connections") === 0 && sample(fams, "upload_queue_bytes") === 0 && gets.at(-1) === sample(fams, "gets") && gets.length >= 3) return;
    if (Date.now() > end) throw new Error("the daemon did not settle within 60 s");
    await Bun.sleep(500);
  }
}

beforeAll(async () => {
  root = tempDir("gostash-status-page-");
  s3 = await startS3Server();
  const upDir = join(root.path, "up");
  writeTestModules(upDir);
  up = startUpstream(upDir);
  db = await startSumdb(upDir);
  const serve = { sock: join(root.path, "plugin.sock"), cacheDir: join(root.path, "cache"), up, db };
  daemon = await startDaemon(modproxyServeArgs(serve, ["--max-size=1GiB"]), s3.env);

  const app = join(root.path, "app");
  writeApp(app);
  const home = join(root.path, "home-mod");
  await goOK(["mod", "download", ...MODULES], app, proxyClientEnv({ gocache: join(root.path, "gocache-mod"), home, proxy: `${daemon.http}/mod`, db }), daemon);
  writeDemoModule(join(root.path, "demo"));
  await goBuild("cold");
  await goBuild("warm");
  await settled(daemon);
  chromium = await launchChromium();
}, 600_000);

afterAll(async () => {
  await chromium?.close();
  if (daemon && daemon.proc.exitCode === null) await daemon.stop();
  up?.stop();
  db?.stop();
  await s3?.stop();
  root?.cleanup();
});

describe("the status page in Chromium, after a go mod download and two go builds", () => {
  let page: Page;
  let shown: { name: string; fmt?: string; value?: string; text: string }[];
  let atMetrics: Map<string, Family>;

  beforeAll(async () => {
    page = await chromium.browser.newPage();
    await page.setViewport({ width: 1280, height: 1000 });
    page.on("request", (r) => void requested.push(r.url()));
    page.on("pageerror", (e) => void pageErrors.push((e as Error).message));
    page.on("console", (m) => void (m.type() === "error" && pageErrors.push(m.text())));
    const res = await page.goto(`${daemon.http}/`, { waitUntil: "load" });
    expect(res?.status()).toBe(200);
    await morePolls(page, 1);
    // The traffic has stopped: /metrics now, then a poll that started after it, then read the page.
    atMetrics = await metricsNow(daemon);
    await morePolls(page, 2);
    shown = await page.$$eval("[data-m]", (els) =>
      els.map((e) => ({ name: e.dataset.m!, fmt: e.dataset.fmt, value: e.dataset.value, text: e.textContent ?? "" })),
    );
    mkdirSync(join(ROOT, ".artifacts"), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  }, 120_000);

  test("nothing moved while the page was read: /metrics is the same before and after", async () => {
    const after = await metricsNow(daemon);
    for (const name of ["gets", "puts", "hits_local", "hits_remote", "misses", "uploads", "modproxy_requests", "sumdb_requests", "disk_bytes"]) {
      expect(sample(after, name), name).toBe(sample(atMetrics, name));
    }
  });

  test("every number on the page equals its /metrics sample, and shows as that number", () => {
    expect(shown.length).toBeGreaterThan(40);
    for (const s of shown) {
      if (s.value === undefined) continue; // words, not a number ("measuring…")
      const v = sample(atMetrics, s.name);
      expect(Number(s.value), s.name).toBe(v);
      expectText(s.name, s.fmt, s.text, v);
    }
    const names = new Set(shown.map((s) => s.name));
    for (const name of ["gets", "puts", "bytes_hit", "bytes_put", "disk_bytes", "uploads", "upload_queue_depth", "s3_errors", "modproxy_requests", "sumdb_requests", "modproxy_upstream_fetches", "connections_total"]) {
      expect(names.has(name), name).toBe(true);
    }
    // The traffic really happened.
    for (const name of ["gets", "puts", "hits_local", "uploads", "modproxy_requests", "sumdb_requests", "disk_bytes"]) expect(sample(atMetrics, name), name).toBeGreaterThan(0);
  });

  test("hit rates and time saved are the /metrics figures", async () => {
    const derived = await page.$$eval("[data-d]", (els) => Object.fromEntries(els.map((e) => [e.dataset.d!, { value: e.dataset.value, text: e.textContent }])));
    const hits = sample(atMetrics, "hits_local") + sample(atMetrics, "hits_remote");
    expect(Number(derived.hitRate!.value)).toBeCloseTo(hits / sample(atMetrics, "gets"), 12);
    expect(derived.hitRate!.text).toBe(`${((100 * hits) / sample(atMetrics, "gets")).toFixed(1)}%`);
    const mh = sample(atMetrics, "modproxy_hits");
    expect(Number(derived.modHitRate!.value)).toBeCloseTo(mh / (mh + sample(atMetrics, "modproxy_misses")), 12);
    // The second build hit what the first one measured (miss to put).
    expect(sample(atMetrics, "time_saved_seconds")).toBeGreaterThan(0);
    expect(Number(derived.timeSaved!.value)).toBeCloseTo(sample(atMetrics, "time_saved_seconds"), 9);
  });

  test("go commands served: one row per build, with its command line, their gets adding up to the daemon's", async () => {
    const rows = await page.$$eval("#command-rows tr", (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => ({ text: td.textContent, value: td.dataset.value }))));
    expect(rows.length).toBeGreaterThanOrEqual(2);
    const gets = rows.reduce((n, cells) => n + Number(cells[5]!.value), 0);
    expect(gets).toBe(sample(atMetrics, "gets"));
    for (const cells of rows) expect(cells[3]!.text).not.toContain("running");
    // Which go command each was: connect said so in its hello.
    for (const cells of rows) expect(cells[1]!.text).toStartWith("go build -o ");
    // Time saved per command (CostTracker's hits, by connection) adds up to the daemon's.
    const saved = rows.reduce((n, cells) => n + Number(cells[11]!.value ?? 0), 0);
    expect(saved).toBeCloseTo(sample(atMetrics, "time_saved_seconds"), 9);
  });

  test("the bucket is healthy, with no error since start; the most requested modules are the downloaded ones", async () => {
    expect(await page.$eval("#bucket-state", (e) => e.dataset.state)).toBe("healthy");
    expect(await page.$eval("#last-error", (e) => e.textContent)).toBe("Last error: none since start");
    const modules = await page.$$eval("#module-rows tr", (trs) => trs.map((tr) => [tr.children[0]!.textContent, Number(tr.children[1].dataset.value)] as const));
    expect(modules.map(([m]) => m).sort()).toEqual(["example.com/Upper/Case", "example.com/dep", "example.com/lib"]);
    // .info, .mod and .zip of each: every module request counted.
    expect(modules.reduce((n, [, c]) => n + c, 0)).toBe(sample(atMetrics, "modproxy_requests"));
  });

  test("the charts drew lines", async () => {
    const charts = await page.$$eval("figure[data-chart]", (figs) =>
      figs.filter((f) => !f.closest("[hidden]")).map((f) => ({
        name: f.dataset.chart,
        lines: [...f.querySelectorAll("path.line")].map((p) => p.getAttribute("d") ?? ""),
        dots: f.querySelectorAll("circle.dot").length,
      })),
    );
    expect(charts.length).toBeGreaterThanOrEqual(9);
    for (const c of charts) expect(c.lines.length, c.name).toBeGreaterThan(0);
    const drawn = charts.filter((c) => c.dots > 0 || c.lines.some((d) => /^M[\d.]+ [\d.]+L/.test(d)));
    expect(drawn.map((c) => c.name)).toEqual(expect.arrayContaining(["gets", "hitRate", "bytes", "disk", "transfer", "connections", "modRequests"]));
    // The traffic shows: hits and misses (cold, then warm build), bytes stored and served, uploads, module misses rise off the baseline.
    const rises = (d: string) => [...d.matchAll(/[ML][\d.]+ ([\d.]+)/g)].some((m) => Number(m[1]) < BASELINE - 1);
    const lines = new Map(charts.map((c) => [c.name, c.lines]));
    for (const [chart, series] of [["gets", 0], ["gets", 1], ["bytes", 0], ["bytes", 1], ["transfer", 1], ["modRequests", 1], ["modRequests", 2], ["connections", 0]] as const) {
      expect(rises(lines.get(chart)![series]!), `${chart} series ${series}`).toBe(true);
    }
  });

  test("the browser asked nothing of any other origin, and the page raised no error", () => {
    const origin = new URL(daemon.http!).origin;
    expect(requested.length).toBeGreaterThan(2);
    for (const url of requested) expect(new URL(url).origin, url).toBe(origin);
    expect(pageErrors).toEqual([]);
  });

  test("a screenshot was kept", () => {
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(20_000);
  });
});

describe("the status page with tokens", () => {
  const RW = "rw-b8e1-token";
  const RO = "ro-44c2-token";
  let locked: Daemon;

  beforeAll(async () => {
    locked = await startDaemon([`--plugin=${join(root.path, "locked.sock")}`, "--http=127.0.0.1:0", `--cache-dir=${join(root.path, "locked-cache")}`], {
      GOSTASH_TOKEN: RW,
      GOSTASH_READ_TOKEN: RO,
    });
  });

  afterAll(async () => {
    if (locked && locked.proc.exitCode === null) await locked.stop();
  });

  test("the page and its data: 401 without a token, 200 with the read token; the tokens appear nowhere", async () => {
    for (const path of ["/", "/status.json"]) {
      expect((await fetch(`${locked.http}${path}`)).status).toBe(401);
      const ok = await fetch(`${locked.http}${path}`, { headers: { Authorization: `Bearer ${RO}` } });
      expect(ok.status).toBe(200);
      const text = await ok.text();
      expect(text).not.toContain(RO);
      expect(text).not.toContain(RW);
    }
  });

  test("in Chromium: refused without a token; with the read token at the Basic prompt the page fills in", async () => {
    // The daemon's 401 asks for Basic credentials; headless Chromium, with no one to answer its
    // prompt, either shows the 401 or fails the navigation for want of credentials. Never the page.
    const anon = await chromium.browser.newPage();
    const outcome = await anon.goto(`${locked.http}/`).then(
      (res) => `HTTP ${res?.status()}`,
      (err: Error) => err.message,
    );
    expect(outcome).toMatch(/^HTTP 401$|^net::ERR_INVALID_AUTH_CREDENTIALS/);
    expect(await anon.evaluate(() => document.body?.dataset.polls ?? null)).toBeNull();
    await anon.close();

    const page = await chromium.browser.newPage();
    const data: number[] = [];
    page.on("response", (r) => void (r.url().includes("/status.json") && data.push(r.status())));
    await page.authenticate({ username: "ci", password: RO });
    expect((await page.goto(`${locked.http}/`))?.status()).toBe(200);
    await morePolls(page, 2);
    expect(data.length).toBeGreaterThanOrEqual(2);
    expect(data.every((s) => s === 200)).toBe(true);
    expect(await page.$eval("#live", (e) => e.className)).toBe("pill ok");
    const flags = await page.$$eval("#flag-rows tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
    expect(flags).toEqual(expect.arrayContaining([["--token", "***", "GOSTASH_TOKEN"], ["--read-token", "***", "GOSTASH_READ_TOKEN"]]));
    await page.close();
  });
});

describe("the status page of a module proxy alone, with limits set to 0", () => {
  let proc: ReturnType<typeof Bun.spawn> | null = null;
  let http = "";

  beforeAll(async () => {
    const args = ["serve", "--http=127.0.0.1:0", "--modproxy", `--upstream=${up.url}`, "--sumdb=off", `--cache-dir=${join(root.path, "modproxy-only")}`, "--max-http-body=0"];
    proc = Bun.spawn([BIN, ...args], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
    let err = "";
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
      err += new TextDecoder().decode(chunk);
      const m = /http on (http:\/\/[^,\s]+)/.exec(err);
      if (m) {
        http = m[1]!;
        break;
      }
    }
    if (!http) throw new Error(`gostash serve did not start:\n${err}`);
  });

  afterAll(async () => {
    proc?.kill();
    await proc?.exited;
  });

  test("the local disk says there is no build cache (not 'measuring…' for good), and a size limit of 0 reads 'no limit'", async () => {
    const page = await chromium.browser.newPage();
    await page.goto(`${http}/`);
    await morePolls(page, 2);
    expect(await page.$eval('[data-m="disk_bytes"]', (e) => e.textContent)).toBe("no build cache");
    const row = await page.$$eval("#limit-rows tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)).find((cells) => cells[0] === "--max-http-body"));
    expect(row?.[1]).toBe("no limit");
    await page.close();
  });
});

describe("the status page when the bucket fails", () => {
  let broken: Daemon;

  beforeAll(async () => {
    // A bucket on a loopback port nothing listens on: every request is refused.
    broken = await startDaemon([`--plugin=${join(root.path, "broken.sock")}`, "--http=127.0.0.1:0", `--cache-dir=${join(root.path, "broken-cache")}`], {
      ...s3.env,
      GOCACHE_S3_ENDPOINT_URL: `http://127.0.0.1:${freePort()}`,
    });
    // Gets that miss locally go to the bucket: enough failures to open the breaker.
    const c = await RawClient.connect(broken.addr);
    for (let id = 1; id <= 8; id++) {
      await c.send(getLine(id, randomID()));
      expect((await c.response(id)).Miss).toBe(true);
    }
    await c.send(closeLine(9));
    await c.response(9);
    c.halfClose();
  });

  afterAll(async () => {
    if (broken && broken.proc.exitCode === null) await broken.stop();
  });

  test("state and last error with its cause and hint, errors as /metrics counts them", async () => {
    const page = await chromium.browser.newPage();
    await page.setViewport({ width: 1280, height: 1000 });
    await page.goto(`${broken.http}/`);
    await morePolls(page, 1);
    const fams = await metricsNow(broken);
    await morePolls(page, 2);
    // The breaker rests 5 s after it trips, then lets one trial through: which of the two the page
    // caught depends on how long it took to load, not on the page.
    const [state, text] = await page.$eval("#bucket-state", (e) => [e.dataset.state, e.textContent]);
    expect([
      ["breaker-open", "breaker open: not calling S3"],
      ["recovering", "recovering: one trial request"],
    ]).toContainEqual([state, text]);
    const lastError = await page.$eval("#last-error", (e) => e.textContent ?? "");
    expect(lastError).toContain("network");
    expect(lastError).toContain("cause: ECONNREFUSED");
    expect(lastError).toContain("hint: check --s3-endpoint-url");
    expect(sample(fams, "s3_errors")).toBeGreaterThanOrEqual(5);
    expect(await page.$eval('[data-m="s3_errors"]', (e) => Number(e.dataset.value))).toBe(sample(fams, "s3_errors"));
    expect(await page.$eval('[data-m="breaker_trips"]', (e) => Number(e.dataset.value))).toBe(1);
    await (await page.$("#bucket"))!.screenshot({ path: join(ROOT, ".artifacts", "status-page-bucket-failing.png") });
    await page.close();
  });
});
