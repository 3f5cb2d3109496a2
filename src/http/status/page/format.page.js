// Numbers for people, the way the rest of gostash writes them: counts with
// thousands separators (exact, so they can be checked against /metrics),
// bytes in binary units as src/util/bytes.ts does, rates per second.

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

function formatBytes(n) {
  let i = 0;
  let v = n;
  while (v >= 1024 && i < BYTE_UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? Math.round(v) : v.toFixed(1)} ${BYTE_UNITS[i]}`;
}

function formatCount(n) {
  return Math.round(n).toLocaleString("en-US");
}

function formatPercent(ratio) {
  return ratio === null ? "–" : `${(ratio * 100).toFixed(1)}%`;
}

/** A rate with two significant figures or so: "0.25/s", "3.5/s", "120/s". */
function formatRate(v) {
  const n = v >= 100 ? formatCount(v) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return `${n}/s`;
}

/** Seconds as "45 s", "12 min 3 s", "2 h 5 min", "3 d 4 h". */
function formatSeconds(s) {
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const parts = [];
  let rest = Math.round(s);
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]]) {
    if (rest >= size && parts.length < 2) {
      parts.push(`${Math.floor(rest / size)} ${unit}`);
      rest %= size;
    } else if (parts.length) break;
  }
  return parts.join(" ");
}

function formatAgo(t, now) {
  const s = Math.max(0, (now - t) / 1000);
  return s < 5 ? "just now" : `${formatSeconds(s)} ago`;
}

const FORMATS = {
  count: formatCount,
  bytes: formatBytes,
  seconds: formatSeconds,
};
