// Fills the page from one status.json document. Text only ever goes in
// through textContent: module paths and error messages come from outside.

const $ = (id) => document.getElementById(id);

/** Shows a number in el, keeping the exact value in data-value (what the browser test reads). */
function showNumber(el, v, format) {
  el.dataset.value = String(v);
  el.textContent = format(v);
  el.classList.remove("na");
  return el;
}

/** Shows words instead of a number ("not measured"): no data-value. */
function showText(el, text) {
  delete el.dataset.value;
  el.textContent = text;
  el.classList.add("na");
}

function sumHits(m) {
  let n = 0;
  for (const k in m) if (k.startsWith("hits_")) n += m[k];
  return n;
}

/** hits_remote is the bucket; any other tier (a pack, ...) is named after its counter. */
function tierName(counter) {
  const t = counter.slice("hits_".length);
  return t === "remote" ? "bucket" : t;
}

function ratio(a, b) {
  return b > 0 ? a / b : null;
}

/** Every [data-m] element: its metric, formatted; [data-d] elements: derived numbers. */
function renderNumbers(doc) {
  const m = doc.metrics;
  for (const el of document.querySelectorAll("[data-m]")) {
    const v = m[el.dataset.m];
    // No figure yet: the first measure is running, or (a module proxy alone) there is no build cache to measure.
    if (v === undefined && el.dataset.m === "disk_bytes") showText(el, doc.commands ? "measuring…" : "no build cache");
    else showNumber(el, v ?? 0, FORMATS[el.dataset.fmt || "count"]);
  }
  const hits = sumHits(m);
  showPercent(document.querySelector('[data-d="hitRate"]'), ratio(hits, m.gets ?? 0));
  const tiers = Object.keys(m).filter((k) => k.startsWith("hits_")).sort();
  $("tiers").textContent = tiers.map((k) => `${tierName(k)} ${formatPercent(ratio(m[k], m.gets ?? 0))}`).join(" · ");
  const mod = (m.modproxy_hits ?? 0) + (m.modproxy_misses ?? 0);
  showPercent(document.querySelector('[data-d="modHitRate"]'), ratio(m.modproxy_hits ?? 0, mod));
  const saved = document.querySelector('[data-d="timeSaved"]');
  if (doc.timeSavedMetric) showNumber(saved, m[doc.timeSavedMetric], formatSeconds);
  else showText(saved, "not measured");
  renderDisk(m);
}

function showPercent(el, r) {
  if (r === null) showText(el, formatPercent(r));
  else showNumber(el, r, formatPercent);
}

function renderDisk(m) {
  const max = m.disk_max_bytes;
  const used = m.disk_bytes;
  $("disk-of").textContent = max ? `of ${formatBytes(max)} (--max-size)` : "no --max-size cap";
  const pct = max && used !== undefined ? Math.min(100, (100 * used) / max) : 0;
  const bar = $("disk-bar");
  bar.style.width = `${pct}%`;
  bar.classList.toggle("full", pct >= 90);
}

function renderHeader(doc) {
  $("version").textContent = doc.version;
  const f = doc.facts;
  const parts = [`up ${formatSeconds(doc.uptimeSeconds)}`];
  if (f.plugin) parts.push(`plugin ${f.plugin}`);
  if (f.cache_dir) parts.push(`cache ${f.cache_dir}`);
  if (f.bucket) parts.push(`bucket s3://${f.bucket}`);
  if (f.modproxy) parts.push(`module proxy at ${f.modproxy}`);
  $("facts").textContent = parts.join(" · ");
}

/** Hides the [data-needs=name] parts and shows the "off" note when a feature is not configured. */
function showFeature(name, on, offNote) {
  for (const el of document.querySelectorAll(`[data-needs="${name}"]`)) el.hidden = !on;
  $(offNote).hidden = on;
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function fillRows(tbody, items, fill) {
  tbody.textContent = "";
  for (const item of items) {
    const tr = document.createElement("tr");
    fill(tr, item);
    tbody.appendChild(tr);
  }
}

const BUCKET_STATES = {
  healthy: ["healthy", "ok"],
  "read-only": ["healthy, read-only", "ok"],
  failing: ["failing", "bad"],
  "breaker-open": ["breaker open: not calling S3", "bad"],
  recovering: ["recovering: one trial request", "warn"],
};

function renderBucket(doc) {
  const b = doc.bucket;
  showFeature("bucket", b !== null, "no-bucket");
  const pill = $("bucket-state");
  pill.hidden = !b;
  if (!b) return;
  $("bucket-name").textContent = `s3://${b.name}`;
  const [text, cls] = BUCKET_STATES[b.state] || [b.state, "warn"];
  pill.textContent = text;
  pill.className = `pill ${cls}`;
  pill.dataset.state = b.state;
  renderLastError($("last-error"), b.lastError, doc.now);
}

function renderLastError(box, e, now) {
  box.textContent = "";
  const head = document.createElement("b");
  head.textContent = "Last error: ";
  box.appendChild(head);
  if (!e) {
    box.appendChild(document.createTextNode("none since start"));
    return;
  }
  const what = [formatAgo(e.at, now), e.kind, e.status ? `HTTP ${e.status}` : "", e.code || ""].filter(Boolean).join(", ");
  box.appendChild(document.createTextNode(`${what}: `));
  const code = document.createElement("code");
  code.textContent = e.message + (e.cause ? `\ncause: ${e.cause}` : "") + (e.hint ? `\nhint: ${e.hint}` : "");
  box.appendChild(code);
}
