// The status page's loop: ask status.json (on this page's own origin, the
// only place it ever talks to) for what changed, redraw, and again every
// POLL_MS while the page is visible. The first answer carries the history
// the daemon kept, so the charts show a trend at once.

const POLL_MS = 2000;

const state = { range: 3600, doc: null, hist: null, startedAt: null, polls: 0, timer: 0, busy: false, again: false };

/** The history resolution a range is drawn from: 5 s samples up to an hour, minutes beyond. */
const resolutionFor = (range) => (range > 3600 ? "1m" : "5s");

const bytesPerSecond = (v) => `${formatBytes(v)}/s`;

/** The charts by name (figure[data-chart]): title, number format, and the series drawn from the history. */
const CHARTS = {
  gets: { title: "Gets per second", format: formatRate, series: (h) => [["hits", ratePoints(h, allHits)], ["misses", ratePoints(h, "misses")]] },
  hitRate: {
    title: "Hit rate",
    format: formatPercent,
    max: 1,
    series: (h) => [["all tiers", ratioPoints(h, allHits, "gets")], ...tierSeries(h).map((k) => [tierName(k), ratioPoints(h, k, "gets")])],
  },
  bytes: { title: "Bytes per second", format: bytesPerSecond, bytes: true, series: (h) => [["served", ratePoints(h, "bytes_hit")], ["stored", ratePoints(h, "bytes_put")]] },
  disk: { title: "Local disk", format: formatBytes, bytes: true, series: (h) => [["used", gaugePoints(h, "disk_bytes")]] },
  timeSaved: { title: "Time saved per second", format: formatRate, series: (h, doc) => [["saved", ratePoints(h, doc.timeSavedMetric)]] },
  queue: { title: "Upload queue", format: formatCount, series: (h) => [["waiting", gaugePoints(h, "upload_queue_depth")]] },
  transfer: { title: "Bucket transfer per second", format: bytesPerSecond, bytes: true, series: (h) => [["down", ratePoints(h, "bytes_down")], ["up", ratePoints(h, "bytes_up")]] },
  bucketErrors: {
    title: "Bucket trouble per second",
    format: formatRate,
    series: (h) => [["S3 errors", ratePoints(h, "s3_errors")], ["drops", ratePoints(h, "upload_drops")], ["integrity", ratePoints(h, "integrity_failures")]],
  },
  connections: { title: "Go commands connected", format: formatCount, series: (h) => [["connected", gaugePoints(h, "connections")]] },
  modRequests: {
    title: "Module requests per second",
    format: formatRate,
    series: (h) => [["hits", ratePoints(h, "modproxy_hits")], ["misses", ratePoints(h, "modproxy_misses")], ["checksums", ratePoints(h, "sumdb_requests")]],
  },
  upstream: {
    title: "Upstream fetches per second",
    format: formatRate,
    series: (h) => [["fetches", ratePoints(h, "modproxy_upstream_fetches")], ["failures", ratePoints(h, "modproxy_upstream_failures")]],
  },
};

/** The hits_<tier> series in the history, local first. */
function tierSeries(h) {
  return Object.keys(h.series).filter((k) => k.startsWith("hits_")).sort((a, b) => (a === "hits_local" ? -1 : b === "hits_local" ? 1 : a < b ? -1 : 1));
}

/** The charts' time span: the chosen range, or since the daemon started when that is shorter (at least 2 minutes). */
function chartFrom(doc) {
  return Math.min(doc.now - 120_000, Math.max(doc.now - state.range * 1000, doc.startedAt));
}

function renderCharts() {
  const { doc, hist } = state;
  if (!doc || !hist) return;
  const from = chartFrom(doc);
  for (const fig of document.querySelectorAll("figure[data-chart]")) {
    const name = fig.dataset.chart;
    const c = CHARTS[name];
    fig.hidden = name === "timeSaved" && !doc.timeSavedMetric;
    if (fig.hidden || fig.closest("[hidden]")) continue;
    drawChart(fig, {
      title: c.title,
      format: c.format,
      fixedMax: c.max,
      bytes: c.bytes,
      from,
      to: doc.now,
      series: c.series(hist, doc).map(([label, points]) => ({ label, points })),
    });
  }
}

function render() {
  const doc = state.doc;
  renderHeader(doc);
  renderNumbers(doc);
  renderBucket(doc);
  renderCommands(doc);
  renderModules(doc);
  renderRevproxy(doc);
  renderLimits(doc);
  renderFlags(doc);
  renderCharts();
}

function setLive(text, cls) {
  const live = $("live");
  live.textContent = text;
  live.className = `pill ${cls}`;
}

/** One poll at a time: a poll asked for while one runs happens right after it. */
async function poll() {
  clearTimeout(state.timer);
  if (state.busy) {
    state.again = true;
    return;
  }
  state.busy = true;
  try {
    await pollOnce();
  } finally {
    state.busy = false;
  }
  document.body.dataset.polls = String(++state.polls);
  if (state.again) {
    state.again = false;
    void poll();
  } else if (document.visibilityState !== "hidden") state.timer = setTimeout(poll, POLL_MS);
}

async function pollOnce() {
  const res = resolutionFor(state.range);
  const fresh = !state.hist || state.hist.resolution !== res;
  const since = fresh || !state.hist.t.length ? 0 : state.hist.t[state.hist.t.length - 1];
  try {
    const r = await fetch(`status.json?history=${res}${since ? `&since=${since}` : ""}`, { cache: "no-store" });
    if (!r.ok) throw new Error(`HTTP ${r.status}${r.status === 401 ? " (a token is needed: reload the page)" : ""}`);
    const doc = await r.json();
    // A restarted daemon starts its counters and history again.
    const restarted = state.startedAt !== null && doc.startedAt !== state.startedAt;
    state.startedAt = doc.startedAt;
    state.hist = mergeHistory(fresh || restarted ? null : state.hist, doc.history, doc.now - state.range * 1000);
    state.doc = doc;
    render();
    setLive(`live · ${clockTime(doc.now, true)}`, "ok");
  } catch (err) {
    setLive(`cannot reach the daemon: ${err.message}`, "bad");
  }
}

for (const b of document.querySelectorAll("[data-range]")) {
  b.addEventListener("click", () => {
    state.range = Number(b.dataset.range);
    state.hist = null; // a longer range needs the history this one trimmed away
    for (const o of document.querySelectorAll("[data-range]")) o.classList.toggle("on", o === b);
    void poll();
  });
}
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") {
    clearTimeout(state.timer);
    setLive("paused while hidden", "");
  } else void poll();
});
window.addEventListener("resize", renderCharts);
void poll();
