// Line charts as hand-written SVG: a chart is a few paths, two axis labels
// and a legend, which is all the status page needs; any charting library
// would weigh more than the whole page. Pointing at a chart shows the
// values at that moment in its legend.

const SVG_NS = "http://www.w3.org/2000/svg";
const CHART_H = 96;
const PLOT_H = 80;

function svgEl(name, attrs, parent) {
  const e = document.createElementNS(SVG_NS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}

/** 1, 2 or 5 times a power of ten, at least v (a round top for the y axis); in KiB, MiB, ... for bytes. */
function niceMax(v, bytes) {
  if (!(v > 0)) return 1;
  const unit = bytes ? Math.pow(1024, Math.max(0, Math.floor(Math.log(v) / Math.log(1024)))) : 1;
  const x = v / unit;
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p * unit;
  return 10 * p * unit;
}

function clockTime(t, seconds) {
  return new Date(t).toLocaleTimeString([], { hourCycle: "h23", hour: "2-digit", minute: "2-digit", ...(seconds ? { second: "2-digit" } : {}) });
}

/** "M x y L x y ..." over the points with a value; a null breaks the line. */
function linePath(points, x, y) {
  let d = "";
  let pen = false;
  for (const [t, v] of points) {
    if (v === null || !Number.isFinite(v)) {
      pen = false;
      continue;
    }
    d += `${pen ? "L" : "M"}${x(t).toFixed(1)} ${y(v).toFixed(1)}`;
    pen = true;
  }
  return d;
}

/** The same line closed down to the x axis, for a faint fill under the first series. */
function areaPath(points, x, y) {
  const pts = points.filter(([, v]) => v !== null && Number.isFinite(v));
  if (pts.length < 2) return "";
  return `${linePath(pts, x, y)}L${x(pts[pts.length - 1][0]).toFixed(1)} ${y(0)}L${x(pts[0][0]).toFixed(1)} ${y(0)}Z`;
}

const hasValue = (p) => p !== undefined && p[1] !== null && Number.isFinite(p[1]);

/** Points with no drawn neighbour (a hit rate over one busy interval): a line cannot show them, a dot does. */
function loosePoints(points) {
  return points.filter((p, i) => hasValue(p) && !hasValue(points[i - 1]) && !hasValue(points[i + 1]));
}

function lastValue(points) {
  for (let i = points.length - 1; i >= 0; i--) if (points[i][1] !== null) return points[i][1];
  return null;
}

/** The value of points at (or just before) time t. */
function valueAt(points, t) {
  let v = null;
  for (const [pt, pv] of points) {
    if (pt > t) break;
    v = pv;
  }
  return v;
}

/**
 * Draws into fig: spec = { title, format(v) -> text, from, to, fixedMax?, bytes?,
 * series: [{ label, points: [[t, v|null], ...] }] }.
 */
function drawChart(fig, spec) {
  fig.textContent = "";
  const cap = document.createElement("figcaption");
  const title = document.createElement("b");
  title.textContent = spec.title;
  cap.appendChild(title);
  const keys = spec.series.map((s, i) => {
    const k = document.createElement("span");
    k.className = `key s${i + 1}`;
    cap.appendChild(k);
    return k;
  });
  const showValues = (at) =>
    spec.series.forEach((s, i) => {
      const v = at === null ? lastValue(s.points) : valueAt(s.points, at);
      keys[i].textContent = `${s.label} ${v === null ? "–" : spec.format(v)}`;
    });
  showValues(null);
  fig.appendChild(cap);

  const w = Math.max(120, fig.clientWidth || 300);
  const svg = svgEl("svg", { viewBox: `0 0 ${w} ${CHART_H}`, role: "img", "aria-label": spec.title }, fig);
  let top = 0;
  for (const s of spec.series) for (const [, v] of s.points) if (v !== null && v > top) top = v;
  const yMax = spec.fixedMax || niceMax(top, spec.bytes);
  const span = Math.max(1, spec.to - spec.from);
  const x = (t) => ((t - spec.from) / span) * w;
  const y = (v) => PLOT_H - (Math.min(v, yMax) / yMax) * (PLOT_H - 4);
  svgEl("line", { class: "grid", x1: 0, x2: w, y1: PLOT_H + 0.5, y2: PLOT_H + 0.5 }, svg);
  svgEl("line", { class: "grid", x1: 0, x2: w, y1: y(yMax / 2), y2: y(yMax / 2) }, svg);
  const first = spec.series[0];
  if (first) svgEl("path", { class: "area s1", d: areaPath(first.points, x, y) }, svg);
  spec.series.forEach((s, i) => {
    svgEl("path", { class: `line s${i + 1}`, d: linePath(s.points, x, y) }, svg);
    for (const [t, v] of loosePoints(s.points)) svgEl("circle", { class: `dot s${i + 1}`, cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 2.5 }, svg);
  });
  svgEl("text", { x: 2, y: 10 }, svg).textContent = spec.format(yMax);
  svgEl("text", { x: 2, y: CHART_H - 2 }, svg).textContent = clockTime(spec.from);
  svgEl("text", { x: w - 2, y: CHART_H - 2, "text-anchor": "end" }, svg).textContent = "now";

  const cursor = svgEl("line", { class: "cursor", y1: 0, y2: PLOT_H, visibility: "hidden" }, svg);
  svg.addEventListener("mousemove", (ev) => {
    const box = svg.getBoundingClientRect();
    const px = ((ev.clientX - box.left) / box.width) * w;
    cursor.setAttribute("x1", px);
    cursor.setAttribute("x2", px);
    cursor.setAttribute("visibility", "visible");
    const t = spec.from + (px / w) * span;
    title.textContent = `${spec.title} at ${clockTime(t, true)}`;
    showValues(t);
  });
  svg.addEventListener("mouseleave", () => {
    cursor.setAttribute("visibility", "hidden");
    title.textContent = spec.title;
    showValues(null);
  });
}
