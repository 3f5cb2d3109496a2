// The daemon's HTTP side, called in-process as a Request -> Response function.
import { describe, expect, test } from "bun:test";
import { createHttpRouter } from "../../src/http/handler.ts";
import { renderPrometheus } from "../../src/http/prometheus.ts";
import { text } from "../../src/http/router.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { parsePrometheus, value } from "./prom-parse.ts";

function sampleMetrics(): Metrics {
  const m = new Metrics();
  m.inc("gets", 10);
  m.inc("hits_local", 6);
  m.inc("misses", 4);
  m.inc("puts", 3);
  m.inc("bytes_put", 12345);
  m.inc("upload_drops", 2);
  m.inc("connections_total", 5);
  m.inc("weird-name.with dots");
  let open = 2;
  m.gauge("connections", () => open);
  m.gauge("breaker_open", () => 0);
  for (const s of [0.00005, 0.0003, 0.002, 0.002, 0.7, 42]) m.observe("get_seconds", s);
  m.observe("put_seconds", 0.001);
  open = 3;
  return m;
}

const req = (path: string, method = "GET") => new Request(`http://127.0.0.1${path}`, { method });

describe("strict Prometheus parser (self-check)", () => {
  test("rejects what a scraper would reject", () => {
    const bad = [
      "x 1", // no final newline
      "# TYPE x counter\n# TYPE x counter\nx 1\n",
      "# TYPE x counter\nx -1\n",
      "x{a=\"1\"} 1\nx{a=\"1\"} 2\n",
      "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
      "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
      "# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx{a=\"b\"} 2\n",
      "x{a=\"\\q\"} 1\n",
      "1x 1\n",
      "x one\n",
    ];
    for (const t of bad) expect(() => parsePrometheus(t)).toThrow();
    expect(parsePrometheus("# HELP x a \\\\ b\n# TYPE x gauge\nx{a=\"q\\\"\\n\"} -1.5e3 123\n").get("x")!.samples[0]).toEqual({
      name: "x",
      labels: { a: 'q"\n' },
      value: -1500,
    });
  });
});

describe("/metrics", () => {
  test("renders every counter, gauge and histogram in strict text format", () => {
    const fams = parsePrometheus(renderPrometheus(sampleMetrics()));
    expect(fams.get("gostash_gets_total")!.type).toBe("counter");
    expect(value(fams, "gostash_gets_total")).toBe(10);
    expect(value(fams, "gostash_hits_total", { tier: "local" })).toBe(6);
    expect(value(fams, "gostash_hits_total", { tier: "remote" })).toBe(0);
    expect(value(fams, "gostash_bytes_put_total")).toBe(12345);
    expect(value(fams, "gostash_upload_drops_total")).toBe(2);
    expect(value(fams, "gostash_connections_total")).toBe(5);
    expect(value(fams, "gostash_weird_name_with_dots_total")).toBe(1);
    expect(fams.get("gostash_connections")!.type).toBe("gauge");
    expect(value(fams, "gostash_connections")).toBe(3);
    expect(value(fams, "gostash_breaker_open")).toBe(0);
    const h = fams.get("gostash_get_seconds")!;
    expect(h.type).toBe("histogram");
    expect(value(fams, "gostash_get_seconds_count")).toBe(6);
    expect(value(fams, "gostash_get_seconds_bucket", { le: "0.0001" })).toBe(1);
    expect(value(fams, "gostash_get_seconds_bucket", { le: "0.0025" })).toBe(4);
    expect(value(fams, "gostash_get_seconds_bucket", { le: "10" })).toBe(5);
    expect(value(fams, "gostash_get_seconds_bucket", { le: "+Inf" })).toBe(6);
    expect(value(fams, "gostash_get_seconds_sum")).toBeCloseTo(42.70435, 6);
    for (const f of fams.values()) expect(f.help?.length).toBeGreaterThan(0);
  });

  test("an empty Metrics still renders a valid exposition", () => {
    const fams = parsePrometheus(renderPrometheus(new Metrics()));
    expect(value(fams, "gostash_hits_total", { tier: "local" })).toBe(0);
  });

  test("served with the text format content type, plus build info", async () => {
    const r = createHttpRouter({ metrics: sampleMetrics() });
    const res = await r.fetch(req("/metrics"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const fams = parsePrometheus(await res.text());
    expect(fams.get("gostash_build_info")!.samples[0]!.labels.version).toBeString();
    const head = await r.fetch(req("/metrics", "HEAD"));
    expect(head.status).toBe(200);
  });
});

describe("/healthz, /debug/vars, routing", () => {
  test("/healthz is 200 while serving and 503 while shutting down", async () => {
    let down = false;
    const r = createHttpRouter({ metrics: new Metrics(), unhealthy: () => (down ? "shutting down" : null) });
    const ok = await r.fetch(req("/healthz"));
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe("ok\n");
    down = true;
    const no = await r.fetch(req("/healthz"));
    expect(no.status).toBe(503);
    expect(await no.text()).toContain("shutting down");
  });

  test("/debug/vars is JSON with counters, gauges, histograms and extra info", async () => {
    const r = createHttpRouter({ metrics: sampleMetrics(), info: () => ({ plugin: "/run/x.sock" }) });
    const res = await r.fetch(req("/debug/vars"));
    expect(res.headers.get("content-type")).toContain("application/json");
    const j = (await res.json()) as Record<string, any>;
    expect(j.plugin).toBe("/run/x.sock");
    expect(j.metrics.gets).toBe(10);
    expect(j.metrics.connections).toBe(3);
    expect(j.histograms.get_seconds.count).toBe(6);
    expect(j.pid).toBe(process.pid);
    expect(typeof j.memory.rss).toBe("number");
  });

  test("unknown paths 404, wrong methods 405, mounts get their whole prefix", async () => {
    const r = createHttpRouter({ metrics: new Metrics() });
    expect((await r.fetch(req("/nope"))).status).toBe(404);
    const post = await r.fetch(req("/metrics", "POST"));
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET");
    r.mount("/mod/", (q) => text(200, `mod ${new URL(q.url).pathname}`));
    expect(await (await r.fetch(req("/mod/example.com/x/@v/list"))).text()).toBe("mod /mod/example.com/x/@v/list");
    expect((await r.fetch(req("/modx"))).status).toBe(404);
    expect((await r.fetch(req("/healthz"))).status).toBe(200);
  });
});
