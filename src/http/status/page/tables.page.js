// The page's tables: go commands served, most requested modules, limits
// and their refusals, flags in effect, and the reverse proxy's counters.

function renderCommands(doc) {
  const rows = doc.commands ? doc.commands.recent : [];
  fillRows($("command-rows"), rows, (tr, c) => {
    const hits = c.hitsLocal + c.hitsRemote;
    cell(tr, String(c.id));
    // Said by connect (its hello) where the OS shows the go command's line.
    cell(tr, c.command ?? "", "wrap");
    cell(tr, clockTime(c.startedAt, true)).title = new Date(c.startedAt).toString();
    cell(tr, c.endedAt === null ? `running ${formatSeconds((doc.now - c.startedAt) / 1000)}` : formatSeconds((c.endedAt - c.startedAt) / 1000));
    cell(tr, c.access === "ro" ? "read-only" : "read-write");
    showNumber(cell(tr, "", "n gets"), c.gets, formatCount);
    cell(tr, formatPercent(ratio(hits, c.gets)), "n");
    cell(tr, formatCount(c.hitsLocal), "n");
    cell(tr, formatCount(c.hitsRemote), "n");
    cell(tr, formatCount(c.puts), "n");
    cell(tr, formatBytes(c.bytesPut), "n");
    if (c.timeSavedSeconds === undefined) cell(tr, "not measured", "n");
    else showNumber(cell(tr, "", "n"), c.timeSavedSeconds, formatSeconds);
  });
  if (!rows.length) fillRows($("command-rows"), [0], (tr) => (cell(tr, "No go command has used the build cache yet.", "none").colSpan = 12));
}

function renderModules(doc) {
  showFeature("modproxy", doc.modproxy !== null, "no-modproxy");
  if (!doc.modproxy) return;
  const top = doc.modproxy.top;
  fillRows($("module-rows"), top, (tr, m) => {
    cell(tr, m.key, "wrap");
    // A top-N estimate: "~" when the count may include requests for modules it replaced.
    cell(tr, `${m.error ? "~" : ""}${formatCount(m.count)}`, "n").dataset.value = String(m.count);
  });
  if (!top.length) fillRows($("module-rows"), [0], (tr) => (cell(tr, "No module requested yet.", "none").colSpan = 2));
}

/** [flag, counter, what happens beyond the limit]. */
const LIMITS = [
  ["--max-connections", "connections_refused", "plugin connection refused; its go command builds from its local cache"],
  ["--max-inflight", "inflight_waits", "the connection is not read until its answers go out"],
  ["--idle-timeout", "connections_idle_closed", "idle plugin connection closed"],
  ["--max-http-requests", "http_busy", "HTTP 503 with Retry-After"],
  ["--max-http-body", "http_too_large", "HTTP 413"],
  ["--max-put-size", "puts_over_limit", "kept on the local disk, not uploaded"],
  ["--upload-queue-bytes", "upload_drops_bytes", "upload dropped; the output stays local"],
  ["--request-timeout", "request_timeouts", "answered as a miss; the download goes on"],
  ["--token", "auth_refused", "plugin connection refused: wrong or missing token"],
  ["--token", "http_unauthorized", "HTTP 401: wrong or missing token"],
  ["--read-token", "http_forbidden", "HTTP 403: the read-only token may only GET and HEAD"],
];

function renderLimits(doc) {
  const flags = new Map(doc.flags.map((f) => [f.name, f.value]));
  fillRows($("limit-rows"), LIMITS, (tr, [flag, counter, what]) => {
    cell(tr, flag);
    const v = flags.get(flag);
    cell(tr, v === undefined ? "not set" : v === "***" ? "set" : /^0( B)?$/.test(v) ? "no limit" : v); // sizes read "0 B"
    cell(tr, what);
    showNumber(cell(tr, "", "n"), doc.metrics[counter] ?? 0, formatCount).dataset.m = counter;
  });
}

function renderFlags(doc) {
  const fill = (tr, f) => {
    cell(tr, f.name);
    cell(tr, f.value, "wrap");
    cell(tr, f.source);
  };
  fillRows($("flag-rows"), doc.flags.filter((f) => f.source !== "default"), fill);
  fillRows($("default-rows"), doc.flags.filter((f) => f.source === "default"), fill);
}

/** The reverse proxy's counters (revproxy_*), shown only when it runs. */
function renderRevproxy(doc) {
  const names = Object.keys(doc.metrics).filter((k) => k.startsWith("revproxy_")).sort();
  $("revproxy").hidden = names.length === 0;
  const cards = $("revproxy-cards");
  cards.textContent = "";
  for (const name of names) {
    const card = document.createElement("div");
    card.className = "card";
    const label = document.createElement("span");
    label.textContent = name.slice("revproxy_".length).replace(/_/g, " ");
    const value = document.createElement("b");
    value.dataset.m = name;
    showNumber(value, doc.metrics[name], name.includes("bytes") ? formatBytes : formatCount);
    card.append(label, value);
    cards.appendChild(card);
  }
}
