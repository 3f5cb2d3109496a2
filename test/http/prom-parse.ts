// A strict parser for the Prometheus text exposition format 0.0.4, written
// for the tests (the npm parsers are lenient: they accept what Prometheus
// itself would reject). It throws on anything a scraper would refuse:
// - bad metric or label names, bad escapes, bad values, missing final newline;
// - TYPE or HELP repeated, TYPE after the family's samples, families split up;
// - duplicate series;
// - histograms without +Inf, with non-cumulative or unsorted buckets, or
//   whose +Inf bucket differs from _count; a missing _sum or _count;
// - negative counters.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  help?: string;
  samples: Sample[];
}

const METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

function parseValue(s: string, line: number): number {
  if (s === "NaN") return NaN;
  if (s === "+Inf" || s === "Inf") return Infinity;
  if (s === "-Inf") return -Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) throw new Error(`line ${line}: bad value ${JSON.stringify(s)}`);
  return Number(s);
}

function familyOf(sample: string, fams: Map<string, Family>): string {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (sample.endsWith(suffix)) {
      const base = sample.slice(0, -suffix.length);
      const f = fams.get(base);
      if (f && (f.type === "histogram" || f.type === "summary")) return base;
    }
  }
  return sample;
}

export function parsePrometheus(text: string): Map<string, Family> {
  if (text.length && !text.endsWith("\n")) throw new Error("exposition must end with a newline");
  const fams = new Map<string, Family>();
  const finished = new Set<string>();
  const series = new Set<string>();
  let current: string | null = null;
  const lines = text.split("\n");
  lines.pop();
  lines.forEach((raw, i) => {
    const n = i + 1;
    if (raw.trim() === "") return;
    if (raw.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(raw);
      if (!m) return; // plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!METRIC.test(name)) throw new Error(`line ${n}: bad metric name ${name}`);
      let f = fams.get(name);
      if (f && finished.has(name)) throw new Error(`line ${n}: ${kind} for ${name} after its samples`);
      if (!f) fams.set(name, (f = { name, type: "untyped", samples: [] }));
      if (current !== name) {
        if (current) finished.add(current);
        current = name;
      }
      if (kind === "TYPE") {
        if ((f as Family & { typed?: boolean }).typed) throw new Error(`line ${n}: second TYPE for ${name}`);
        if (f.samples.length) throw new Error(`line ${n}: TYPE for ${name} after samples`);
        if (!TYPES.has(rest)) throw new Error(`line ${n}: unknown type ${rest}`);
        f.type = rest;
        (f as Family & { typed?: boolean }).typed = true;
      } else {
        if (f.help !== undefined) throw new Error(`line ${n}: second HELP for ${name}`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ""))) throw new Error(`line ${n}: bad escape in HELP`);
        f.help = rest.replace(/\\(\\|n)/g, (_, c) => (c === "n" ? "\n" : "\\"));
      }
      return;
    }
    // name{labels} value [timestamp]
    const nm = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(raw);
    if (!nm) throw new Error(`line ${n}: bad sample ${JSON.stringify(raw)}`);
    const name = nm[1]!;
    let pos = name.length;
    const labels: Record<string, string> = {};
    if (raw[pos] === "{") {
      pos++;
      for (;;) {
        if (raw[pos] === "}") {
          pos++;
          break;
        }
        const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(raw.slice(pos));
        if (!lm || !LABEL.test(lm[1]!)) throw new Error(`line ${n}: bad label at ${JSON.stringify(raw.slice(pos))}`);
        pos += lm[0].length;
        let v = "";
        for (;;) {
          const c = raw[pos];
          if (c === undefined) throw new Error(`line ${n}: unterminated label value`);
          pos++;
          if (c === '"') break;
          if (c === "\\") {
            const e = raw[pos++];
            if (e === "\\") v += "\\";
            else if (e === '"') v += '"';
            else if (e === "n") v += "\n";
            else throw new Error(`line ${n}: bad escape \\${e}`);
          } else v += c;
        }
        if (lm[1]! in labels) throw new Error(`line ${n}: duplicate label ${lm[1]}`);
        labels[lm[1]!] = v;
        if (raw[pos] === ",") pos++;
        else if (raw[pos] !== "}") throw new Error(`line ${n}: expected , or } in labels`);
      }
    }
    if (raw[pos] !== " ") throw new Error(`line ${n}: expected a space before the value`);
    const parts = raw.slice(pos + 1).split(" ");
    if (parts.length < 1 || parts.length > 2 || parts.some((p) => p === "")) throw new Error(`line ${n}: bad value part`);
    const value = parseValue(parts[0]!, n);
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new Error(`line ${n}: bad timestamp`);
    const famName = familyOf(name, fams);
    let f = fams.get(famName);
    if (!f) fams.set(famName, (f = { name: famName, type: "untyped", samples: [] }));
    if (finished.has(famName)) throw new Error(`line ${n}: samples of ${famName} are not contiguous`);
    if (current !== famName) {
      if (current) finished.add(current);
      current = famName;
    }
    if (f.type === "histogram" && name === famName) throw new Error(`line ${n}: histogram sample without suffix`);
    if ((f.type === "counter" || f.type === "gauge") && name !== famName) throw new Error(`line ${n}: ${name} in family ${famName}`);
    if (f.type === "counter" && !(value >= 0)) throw new Error(`line ${n}: counter ${name} is ${value}`);
    const key = `${name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(",")}}`;
    if (series.has(key)) throw new Error(`line ${n}: duplicate series ${key}`);
    series.add(key);
    f.samples.push({ name, labels, value });
  });
  for (const f of fams.values()) if (f.type === "histogram") checkHistogram(f);
  return fams;
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { buckets: [] }));
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}: bucket without le`);
      g.buckets.push([parseValue(le, 0), s.value]);
    } else if (s.name === `${f.name}_sum`) g.sum = s.value;
    else if (s.name === `${f.name}_count`) g.count = s.value;
  }
  for (const g of groups.values()) {
    if (g.sum === undefined || g.count === undefined) throw new Error(`${f.name}: missing _sum or _count`);
    const b = g.buckets;
    if (!b.length || b.at(-1)![0] !== Infinity) throw new Error(`${f.name}: no +Inf bucket last`);
    for (let i = 1; i < b.length; i++) {
      if (!(b[i]![0] > b[i - 1]![0])) throw new Error(`${f.name}: buckets not sorted by le`);
      if (b[i]![1] < b[i - 1]![1]) throw new Error(`${f.name}: buckets not cumulative`);
    }
    if (b.at(-1)![1] !== g.count) throw new Error(`${f.name}: +Inf bucket ${b.at(-1)![1]} != count ${g.count}`);
  }
}

/** The value of one series, e.g. value(f, "gostash_hits_total", {tier: "local"}). */
export function value(fams: Map<string, Family>, sample: string, labels: Record<string, string> = {}): number | undefined {
  const famName = familyOf(sample, fams);
  const f = fams.get(famName);
  const want = JSON.stringify(Object.entries(labels).sort());
  return f?.samples.find((s) => s.name === sample && JSON.stringify(Object.entries(s.labels).sort()) === want)?.value;
}
