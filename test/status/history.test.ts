// The status page's history in the daemon: a bounded ring per resolution,
// counters as running totals, gauges at their value (and their peak in the
// per-minute ring), and "what came after t" for the page's polls.
import { describe, expect, test } from "bun:test";
import { History, isCharted } from "../../src/http/status/history.ts";
import { SeriesRing } from "../../src/http/status/ring.ts";
import { Metrics } from "../../src/util/metrics.ts";

describe("SeriesRing", () => {
  test("keeps the last `capacity` samples, oldest first, whatever was pushed before", () => {
    const r = new SeriesRing(3);
    for (let i = 1; i <= 5; i++) r.push(i * 10, { a: i });
    expect(r.size).toBe(3);
    expect(r.lastTime).toBe(50);
    expect(r.since(0)).toEqual({ t: [30, 40, 50], series: { a: [3, 4, 5] } });
    expect(r.since(40)).toEqual({ t: [50], series: { a: [5] } });
    expect(r.since(50)).toEqual({ t: [], series: { a: [] } });
  });

  test("a series that appears later reads null before it; a missing value is null; at most maxSeries series", () => {
    const r = new SeriesRing(4, 2);
    r.push(1, { a: 1 });
    r.push(2, { a: 2, b: 20, c: 300 });
    r.push(3, { b: 30 });
    expect(r.since()).toEqual({ t: [1, 2, 3], series: { a: [1, 2, null], b: [null, 20, 30] } });
  });
});

describe("History", () => {
  test("samples the charted metrics only: counters as totals, gauges as values", () => {
    const m = new Metrics();
    let depth = 3;
    m.gauge("upload_queue_depth", () => depth);
    m.inc("gets", 5);
    m.inc("hits_local", 2);
    m.inc("hits_pack", 1);
    m.inc("time_saved_seconds", 12.5);
    m.inc("modproxy_bad_requests"); // not charted
    const h = new History(m);
    h.sample(1000);
    m.inc("gets", 3);
    depth = 0;
    h.sample(6000);
    const rows = h.rows("5s");
    expect(rows.t).toEqual([1000, 6000]);
    expect(rows.stepMs).toBe(5000);
    expect(rows.series.gets).toEqual([5, 8]);
    expect(rows.series.upload_queue_depth).toEqual([3, 0]);
    expect(rows.series.hits_pack).toEqual([1, 1]);
    expect(rows.series.time_saved_seconds).toEqual([12.5, 12.5]);
    expect(rows.series.modproxy_bad_requests).toBeUndefined();
    expect(h.rows("5s", 1000).t).toEqual([6000]);
  });

  test("the per-minute ring: its first sample at once, then one per `coarseEvery`, gauges at their peak of that minute", () => {
    const m = new Metrics();
    let depth = 0;
    m.gauge("upload_queue_depth", () => depth);
    const h = new History(m, { coarseEvery: 3 });
    const depths = [1, 9, 2, 4, 0, 5, 6];
    depths.forEach((d, i) => {
      depth = d;
      m.inc("uploads");
      h.sample((i + 1) * 5000);
    });
    const coarse = h.rows("1m");
    expect(coarse.stepMs).toBe(15_000);
    // samples 1 (first), 4 and 7: peaks of 2..4 and 5..7.
    expect(coarse.t).toEqual([5000, 20_000, 35_000]);
    expect(coarse.series.upload_queue_depth).toEqual([1, 9, 6]);
    expect(coarse.series.uploads).toEqual([1, 4, 7]);
  });

  test("memory is bounded: an hour of 5 s samples and a day of minutes, however long it runs", () => {
    const m = new Metrics();
    m.inc("gets");
    const h = new History(m);
    for (let i = 1; i <= 3000; i++) h.sample(i * 5000);
    expect(h.rows("5s").t.length).toBe(720);
    expect(h.rows("5s").t[0]).toBe((3000 - 719) * 5000);
    expect(h.rows("1m").t.length).toBe(Math.ceil(3000 / 12));
  });

  test("what is charted", () => {
    for (const name of ["gets", "hits_remote", "hits_pack", "time_saved_seconds", "revproxy_requests", "disk_bytes", "modproxy_upstream_failures"]) expect(isCharted(name)).toBe(true);
    for (const name of ["http_in_flight", "get_seconds", "auth_refused"]) expect(isCharted(name)).toBe(false);
  });
});
