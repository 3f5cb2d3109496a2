// The page's copy of the daemon's history (status.json "history"): samples
// appended as they come, trimmed to the chart range, and turned into chart
// points. Counters are running totals, so a chart of a counter shows its
// rate between two samples; gauges are shown as they are.

/** rows merged into hist (null: a fresh copy), keeping only samples after `from`. */
function mergeHistory(hist, rows, from) {
  const h = hist || { resolution: rows.resolution, stepMs: rows.stepMs, t: [], series: {} };
  const before = h.t.length;
  h.t.push(...rows.t);
  for (const name of new Set([...Object.keys(h.series), ...Object.keys(rows.series)])) {
    const old = h.series[name] || new Array(before).fill(null);
    const add = rows.series[name] || new Array(rows.t.length).fill(null);
    h.series[name] = old.concat(add);
  }
  let drop = 0;
  while (drop < h.t.length - 1 && h.t[drop] < from) drop++;
  if (drop) {
    h.t = h.t.slice(drop);
    for (const name in h.series) h.series[name] = h.series[name].slice(drop);
  }
  return h;
}

/** Values of a series by sample; `name` may be a function of (series, index) for sums. */
function column(h, name) {
  if (typeof name === "function") return h.t.map((_, i) => name(h.series, i));
  return h.series[name] || h.t.map(() => null);
}

/** Sum of every hits_<tier> series at sample i (null when none had a value). */
function allHits(series, i) {
  let sum = null;
  for (const k in series) if (k.startsWith("hits_") && series[k][i] !== null) sum = (sum || 0) + series[k][i];
  return sum;
}

/** Points of a gauge: its value at each sample. */
function gaugePoints(h, name) {
  const v = column(h, name);
  return h.t.map((t, i) => [t, v[i]]);
}

/**
 * Points of a counter: its increase per second between samples. A counter
 * exists from its first count on, so before that it was 0 (the history
 * starts again when the daemon does); a decrease is a reset, not drawn.
 */
function ratePoints(h, name) {
  const v = column(h, name).map((x) => x ?? 0);
  const out = [];
  for (let i = 1; i < h.t.length; i++) {
    const d = v[i] - v[i - 1];
    out.push([h.t[i], d < 0 ? null : d / ((h.t[i] - h.t[i - 1]) / 1000)]);
  }
  return out;
}

/** Points of a ratio of two counters' increases (hit rate); null where the denominator did not move. */
function ratioPoints(h, num, den) {
  const a = column(h, num);
  const b = column(h, den);
  const out = [];
  for (let i = 1; i < h.t.length; i++) {
    const dn = (a[i] ?? 0) - (a[i - 1] ?? 0);
    const dd = (b[i] ?? 0) - (b[i - 1] ?? 0);
    out.push([h.t[i], dd > 0 && dn >= 0 ? Math.min(1, dn / dd) : null]);
  }
  return out;
}
