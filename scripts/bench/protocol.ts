#!/usr/bin/env bun
// Protocol-level benchmarks of the GOCACHEPROG plugin, driven directly over
// its stdin/stdout (no `go` command in the loop):
//
//   (a) start-up: time from spawn to the capability line on stdout, for
//       dist/gostash and the Go reference plugin, to the answer of a first
//       get, and at the end from close sent to stdout closed (`go` waits
//       for all three), next to floors: a compiled
//       Bun binary that only prints the capability line, `gostash version`
//       and `bun --version` run to exit, and /bin/true (spawn cost itself).
//   (b) get hits: a cache filled with --entries puts through the protocol,
//       then every entry fetched once per phase: sequential ping-pong (one
//       request in flight), a window of 16 in flight (about what `go build`
//       keeps in flight), and all requests written at once. Round trips per
//       second and per-request latency, gostash vs the reference plugin.
//   (c) memory: peak RSS (VmHWM from /proc) of the plugin across one
//       --put-mb MB put streamed through the protocol (request line, empty
//       line, then the body as one JSON string of base64). Goal: < 100 MB.
//
//   npx bun scripts/bench/protocol.ts [--start-runs 40] [--entries 2000]
//     [--rounds 3] [--put-mb 300] [--no-ref-put] [--compare BIN] [--rebuild] [--keep]
//     [--only start|gets|memory]
//
// --compare BIN measures another gostash binary (a candidate build) as a
// fourth plugin, "compare", in every section.

import { randomBytes, createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { cpus, loadavg } from "node:os";
import {
  benchDir,
  ensureGostash,
  ensureTools,
  fmtBytes,
  fmtMs,
  fmtRatio,
  intFlag,
  die,
  interleave,
  log,
  max,
  median,
  min,
  mustRun,
  p90,
  p99,
  parseFlags,
  referencePlugin,
  setKeepTemps,
  table,
  tempDir,
  type Samples,
  type Variant,
} from "./lib.ts";

const flags = parseFlags(Bun.argv.slice(2), {
  "start-runs": "40",
  entries: "2000",
  rounds: "3",
  "put-mb": "300",
  "no-ref-put": false,
  compare: "",
  rebuild: false,
  keep: false,
  only: "",
});
setKeepTemps(flags.keep === true);
const startRuns = intFlag(flags, "start-runs");
const entries = intFlag(flags, "entries");
const rounds = intFlag(flags, "rounds");
const putMB = intFlag(flags, "put-mb");

const gostash = ensureGostash({ rebuild: flags.rebuild === true });
const ref = referencePlugin(ensureTools());
if (!ref) log("no reference plugin could be installed; measuring gostash only");
const gostashVersion = (await mustRun([gostash, "version"])).stdout.trim();
/** --compare BIN: another gostash build (e.g. a candidate) measured alongside. */
const alt = flags.compare ? String(flags.compare) : null;

const CAPS = '{"ID":0,"KnownCommands":["get","put","close"]}\n';

// ------------------------------------------------------------------ client

type Msg = { ID: number; Miss?: boolean; Err?: string; DiskPath?: string; Size?: number; KnownCommands?: string[] };

/** A GOCACHEPROG parent: spawns a plugin and talks the protocol to it. */
class Client {
  readonly proc;
  private pending = new Map<number, (m: Msg) => void>();
  private nextID = 1;
  private buf = "";
  private capsResolve!: (t: number) => void;
  private eofResolve!: (t: number) => void;
  /** performance.now() when the capability line arrived. */
  readonly caps: Promise<number>;
  /** performance.now() when the plugin's stdout closed (what `go` waits for after close). */
  readonly eof: Promise<number>;
  readonly spawnedAt: number;
  stderr = "";

  constructor(cmd: string[], env?: Record<string, string>) {
    this.caps = new Promise((r) => (this.capsResolve = r));
    this.eof = new Promise((r) => (this.eofResolve = r));
    this.spawnedAt = performance.now();
    this.proc = Bun.spawn(cmd, { stdin: "pipe", stdout: "pipe", stderr: "pipe", env: env ?? { ...process.env } });
    void this.readLoop();
    void new Response(this.proc.stderr).text().then((t) => (this.stderr = t));
  }

  private async readLoop(): Promise<void> {
    const dec = new TextDecoder();
    for await (const chunk of this.proc.stdout as ReadableStream<Uint8Array>) {
      this.buf += dec.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = this.buf.indexOf("\n")) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        if (!line.trim()) continue;
        const m = JSON.parse(line) as Msg;
        if (m.ID === 0 && m.KnownCommands) {
          this.capsResolve(performance.now());
          continue;
        }
        const done = this.pending.get(m.ID);
        if (!done) throw new Error(`plugin answered unknown ID ${m.ID}: ${line}`);
        this.pending.delete(m.ID);
        done(m);
      }
    }
    this.eofResolve(performance.now());
  }

  /** Sends one request (no flush); resolves with its response. */
  send(req: Record<string, unknown>): { id: number; res: Promise<Msg> } {
    const id = this.nextID++;
    const res = new Promise<Msg>((r) => this.pending.set(id, r));
    this.proc.stdin.write(`${JSON.stringify({ ID: id, ...req })}\n\n`);
    return { id, res };
  }

  flush(): void | Promise<unknown> {
    const r = this.proc.stdin.flush();
    return r instanceof Promise ? r : undefined;
  }

  write(s: string | Uint8Array): void {
    this.proc.stdin.write(s);
  }

  async close(): Promise<number> {
    const { res } = this.send({ Command: "close" });
    await this.flush();
    await res;
    this.proc.stdin.end();
    return await this.proc.exited;
  }
}

const b64 = (hex: string) => Buffer.from(hex, "hex").toString("base64");
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** gostash, the reference plugin, or a --compare build of gostash. */
type Kind = "gostash" | "ref" | "alt";

function pluginCmd(kind: Kind, dir: string): string[] {
  const bin = kind === "gostash" ? gostash : kind === "alt" ? alt! : ref!.bin;
  return [bin, "--cache-dir", dir];
}

function kindName(kind: Kind): string {
  return kind === "gostash" ? "gostash" : kind === "alt" ? "compare" : ref!.name;
}

// ------------------------------------------------------------------ (a) start-up

async function floorBinary(): Promise<string> {
  const dir = join(benchDir, `floor-bun-${Bun.version}`);
  const bin = join(dir, "floor");
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const src = join(dir, "floor.ts");
  await Bun.write(
    src,
    `import { writeSync } from "node:fs";\nwriteSync(1, ${JSON.stringify(CAPS)});\nfor await (const _ of Bun.stdin.stream()) {}\n`,
  );
  const r = await Bun.build({
    entrypoints: [src],
    minify: true,
    bytecode: true,
    format: "esm",
    compile: { outfile: bin, autoloadDotenv: false, autoloadBunfig: false, autoloadTsconfig: false, autoloadPackageJson: false },
  });
  if (!r.success) throw new Error(`building the floor binary failed: ${r.logs.join("\n")}`);
  return bin;
}

/** Spawn to capability line; then EOF and wait for exit (not timed). */
async function timeToCaps(cmd: string[]): Promise<{ ms: number }> {
  const c = new Client(cmd);
  const t = await Promise.race([c.caps, c.proc.exited.then(() => NaN)]);
  c.proc.stdin.end();
  await c.proc.exited;
  if (Number.isNaN(t)) throw new Error(`${cmd.join(" ")} exited before its capability line: ${c.stderr}`);
  return { ms: t - c.spawnedAt };
}

/** Spawn to the answer of a first get (a miss), sent as soon as the capability line arrives, as `go` does. */
async function firstAnswer(cmd: string[]): Promise<{ ms: number }> {
  const c = new Client(cmd);
  await c.caps;
  const { res } = c.send({ Command: "get", ActionID: b64(sha(randomBytes(8))) });
  await c.flush();
  const m = await res;
  const ms = performance.now() - c.spawnedAt;
  if (!m.Miss) throw new Error(`${cmd.join(" ")}: expected a miss, got ${JSON.stringify(m)}`);
  await c.close();
  return { ms };
}

/**
 * As `go` ends a plugin (after one answered get): close, read its answer,
 * close stdin, wait until the plugin's stdout closes (cmd/go waits for that,
 * not for the exit). The exit is awaited too, and must be clean.
 */
async function closeToExit(cmd: string[]): Promise<{ ms: number }> {
  const c = new Client(cmd);
  await c.caps;
  const { res } = c.send({ Command: "get", ActionID: b64(sha(randomBytes(8))) });
  await c.flush();
  await res;
  const t0 = performance.now();
  const code = await c.close();
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited ${code}: ${c.stderr}`);
  return { ms: (await c.eof) - t0 };
}

async function timeToExit(cmd: string[]): Promise<{ ms: number }> {
  const t0 = performance.now();
  const p = Bun.spawn(cmd, { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  const code = await p.exited;
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited ${code}`);
  return { ms: performance.now() - t0 };
}

async function benchStartup(): Promise<string[]> {
  const dir = tempDir("start");
  const floor = await floorBinary();
  const variants: Variant[] = [
    { name: "gostash (caps line)", once: () => timeToCaps(pluginCmd("gostash", join(dir, "g"))) },
    { name: "bun floor (caps line)", once: () => timeToCaps([floor]) },
  ];
  if (ref) variants.push({ name: `${ref.name} (caps line)`, once: () => timeToCaps(pluginCmd("ref", join(dir, "r"))) });
  if (alt) variants.push({ name: "compare (caps line)", once: () => timeToCaps(pluginCmd("alt", join(dir, "a"))) });
  const kinds: [Kind, string][] = [["gostash", "g"]];
  if (ref) kinds.push(["ref", "r"]);
  if (alt) kinds.push(["alt", "a"]);
  for (const [k, d] of kinds) variants.push({ name: `${kindName(k)} (first answer)`, once: () => firstAnswer(pluginCmd(k, join(dir, d))) });
  for (const [k, d] of kinds) variants.push({ name: `${kindName(k)} (close→EOF)`, once: () => closeToExit(pluginCmd(k, join(dir, d))) });
  variants.push(
    { name: "gostash version (exit)", once: () => timeToExit([gostash, "version"]) },
    { name: "bun --version (exit)", once: () => timeToExit([process.execPath, "--version"]) },
    { name: "/bin/true (exit)", once: () => timeToExit(["/bin/true"]) },
  );
  // warm the page cache
  for (const v of variants) await v.once();
  const samples = await interleave(variants, startRuns, "start-up: ");
  const base = samples.find((s) => s.name.startsWith("bun floor"))!;
  const out = [
    `## (a) start-up: spawn to capability line, to the first answer, and close to exit (${startRuns} interleaved runs each)`,
    "",
    table(
      ["variant", "median", "p90", "min", "max", "median / bun floor"],
      samples.map((s) => [s.name, fmtMs(median(s.ms)), fmtMs(p90(s.ms)), fmtMs(min(s.ms)), fmtMs(max(s.ms)), fmtRatio(median(s.ms) / median(base.ms))]),
    ),
    "",
    `goal: gostash under 8 ms to the capability line: ${median(samples[0]!.ms) < 8 ? "ok" : "MISSED"} (median ${fmtMs(median(samples[0]!.ms))})`,
    `"bun floor" is a compiled Bun binary (same build options) whose whole program is writeSync(1, capability line).`,
    `"first answer": spawn to the answer of a get (a miss) sent as soon as the capability line arrived; \`go\` waits for it before its first action.`,
    `"close→EOF" (after one answered get) is what \`go\` waits for at the end of every command: send close, read the answer, close stdin, wait until the plugin closes its stdout (the exit itself is not waited for).`,
  ];
  return out;
}

// ------------------------------------------------------------------ (b) get hits

interface Entry {
  action: string;
  output: string;
  size: number;
}

async function populate(kind: Kind, dir: string, list: Entry[], bodies: Map<string, Uint8Array>): Promise<number> {
  const c = new Client(pluginCmd(kind, dir));
  await c.caps;
  const t0 = performance.now();
  const window: Promise<Msg>[] = [];
  for (const e of list) {
    const { res } = c.send({ Command: "put", ActionID: b64(e.action), OutputID: b64(e.output), BodySize: e.size });
    c.write(`"${Buffer.from(bodies.get(e.output)!).toString("base64")}"\n`);
    window.push(res);
    if (window.length >= 64) {
      await c.flush();
      for (const m of await Promise.all(window.splice(0))) if (m.Err) throw new Error(`put: ${m.Err}`);
    }
  }
  await c.flush();
  for (const m of await Promise.all(window)) if (m.Err) throw new Error(`put: ${m.Err}`);
  const ms = performance.now() - t0;
  await c.close();
  return ms;
}

interface GetRun {
  totalMs: number;
  lat: number[];
}

/** Fetches every entry once with at most `depth` requests in flight. */
async function getPhase(kind: Kind, dir: string, list: Entry[], depth: number): Promise<GetRun> {
  const c = new Client(pluginCmd(kind, dir));
  await c.caps;
  const lat: number[] = [];
  const t0 = performance.now();
  let next = 0;
  const one = async (e: Entry) => {
    const ts = performance.now();
    const { res } = c.send({ Command: "get", ActionID: b64(e.action) });
    await c.flush();
    const m = await res;
    lat.push(performance.now() - ts);
    if (m.Miss || m.Err || m.Size !== e.size) throw new Error(`${kind}: expected a hit of ${e.size} bytes, got ${JSON.stringify(m)}`);
  };
  if (depth >= list.length) {
    // Everything at once: write all requests, flush once.
    const sends = list.map((e) => {
      const ts = performance.now();
      const { res } = c.send({ Command: "get", ActionID: b64(e.action) });
      return res.then((m) => {
        lat.push(performance.now() - ts);
        if (m.Miss || m.Err || m.Size !== e.size) throw new Error(`${kind}: expected a hit, got ${JSON.stringify(m)}`);
      });
    });
    await c.flush();
    await Promise.all(sends);
  } else {
    const worker = async () => {
      while (next < list.length) await one(list[next++]!);
    };
    await Promise.all(Array.from({ length: depth }, worker));
  }
  const totalMs = performance.now() - t0;
  await c.close();
  return { totalMs, lat };
}

async function benchGets(): Promise<string[]> {
  const dir = tempDir("gets");
  const list: Entry[] = [];
  const bodies = new Map<string, Uint8Array>();
  for (let i = 0; i < entries; i++) {
    // Sizes as in a build cache: mostly small, some large (256 B .. 64 KiB).
    const size = Math.floor(256 * Math.pow(256, Math.random()));
    const body = randomBytes(size);
    const output = sha(body);
    bodies.set(output, body);
    list.push({ action: sha(randomBytes(32)), output, size });
  }
  const kinds: Kind[] = ["gostash"];
  if (ref) kinds.push("ref");
  if (alt) kinds.push("alt");
  const name = kindName;
  const putRows: string[][] = [];
  for (const k of kinds) {
    const ms = await populate(k, join(dir, k), list, bodies);
    putRows.push([name(k), String(entries), fmtMs(ms), `${Math.round((entries / ms) * 1000)}/s`]);
  }
  // Shuffle so gets do not walk the directories in put order.
  const order = [...list].sort(() => Math.random() - 0.5);
  const depths = [1, 16, order.length];
  const rows: string[][] = [];
  const rps = new Map<string, number>();
  for (const depth of depths) {
    const lat = new Map<string, number[]>();
    const variants: Variant[] = kinds.map((k) => ({
      name: name(k),
      async once() {
        const r = await getPhase(k, join(dir, k), order, depth);
        lat.set(name(k), [...(lat.get(name(k)) ?? []), ...r.lat]);
        return { ms: r.totalMs };
      },
    }));
    const label = depth === 1 ? "sequential" : depth >= order.length ? `all ${order.length} at once` : `${depth} in flight`;
    const samples: Samples[] = await interleave(variants, rounds, `gets ${label}: `);
    for (const s of samples) {
      const l = lat.get(s.name)!;
      const r = (order.length / median(s.ms)) * 1000;
      rps.set(`${s.name}@${depth}`, r);
      rows.push([label, s.name, `${Math.round(r)}/s`, fmtMs(median(s.ms)), fmtMs(median(l)), fmtMs(p90(l)), fmtMs(p99(l))]);
    }
  }
  const out = [
    `## (b) get hits over the protocol (${entries} entries of 256 B-64 KiB; each phase fetches every entry once; ${rounds} interleaved rounds, fresh process per round)`,
    "",
    "fill (puts, 64 in flight; one run per plugin, in sequence, not interleaved: indicative only):",
    table(["plugin", "puts", "time", "rate"], putRows),
    "",
    table(["phase", "plugin", "hits/s (median)", "phase time", "latency p50", "p90", "p99"], rows),
  ];
  if (ref) {
    out.push("");
    for (const d of depths) {
      const a = rps.get(`gostash@${d}`)!;
      const b = rps.get(`${ref.name}@${d}`)!;
      out.push(`gostash / ${ref.name} throughput at depth ${d}: ${fmtRatio(a / b)} (higher is better)`);
    }
  }
  out.push("latency is measured in the bench client (Bun) from writing a request to parsing its answer; both plugins pay the same client cost.");
  return out;
}

// ------------------------------------------------------------------ (c) memory

function procStatus(pid: number): { rss: number; hwm: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "latin1");
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(s)?.[1] ?? NaN) * 1024;
    return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
  } catch {
    return null;
  }
}

async function putMemory(kind: Kind, dir: string, size: number): Promise<{ row: string[]; peak: number }> {
  // A 3 MiB random block (a multiple of 3 bytes, so its base64 concatenates
  // cleanly) repeated up to `size` bytes; the tail is a prefix of the block.
  const block = randomBytes(3 << 20);
  const blockB64 = block.toString("base64");
  const full = Math.floor(size / block.length);
  const tail = size - full * block.length;
  const h = createHash("sha256");
  for (let i = 0; i < full; i++) h.update(block);
  h.update(block.subarray(0, tail));
  const output = h.digest("hex");
  const action = sha(randomBytes(32));

  const c = new Client(pluginCmd(kind, dir));
  await c.caps;
  await Bun.sleep(50);
  const idle = procStatus(c.proc.pid)!;
  let peakRss = idle.rss;
  const poll = setInterval(() => {
    const s = procStatus(c.proc.pid);
    if (s && s.rss > peakRss) peakRss = s.rss;
  }, 5);
  const t0 = performance.now();
  const { res } = c.send({ Command: "put", ActionID: b64(action), OutputID: b64(output), BodySize: size });
  c.write('"');
  for (let i = 0; i < full; i++) {
    c.write(blockB64);
    await c.flush();
  }
  c.write(`${block.subarray(0, tail).toString("base64")}"\n`);
  await c.flush();
  const m = await res;
  const ms = performance.now() - t0;
  const end = procStatus(c.proc.pid)!;
  clearInterval(poll);
  await c.close();
  if (m.Err || !m.DiskPath) throw new Error(`${kind}: 300 MB put failed: ${JSON.stringify(m)} ${c.stderr}`);
  const onDisk = statSync(m.DiskPath).size;
  if (onDisk !== size) throw new Error(`${kind}: DiskPath holds ${onDisk} bytes, want ${size}`);
  const name = kindName(kind);
  const peak = Math.max(end.hwm, peakRss);
  return {
    peak,
    row: [name, fmtBytes(idle.hwm), fmtBytes(peak), fmtBytes(peak - idle.rss), fmtMs(ms), `${(size / (1 << 20) / (ms / 1000)).toFixed(0)} MiB/s`],
  };
}

async function benchMemory(): Promise<string[]> {
  const dir = tempDir("put");
  const size = putMB * 1_000_000;
  const g = await putMemory("gostash", join(dir, "g"), size);
  const rows = [g.row];
  if (alt) rows.push((await putMemory("alt", join(dir, "a"), size)).row);
  if (ref && !flags["no-ref-put"]) rows.push((await putMemory("ref", join(dir, "r"), size)).row);
  return [
    `## (c) peak memory during one ${putMB} MB put (${fmtBytes(size)} body, ${fmtBytes(Math.ceil(size / 3) * 4)} of base64 on one line)`,
    "",
    table(["plugin", "VmHWM idle (after caps line)", "peak RSS (VmHWM at answer)", "peak - idle RSS", "put time", "throughput"], rows),
    "",
    `goal: gostash peak under 100 MB: ${g.peak < 100e6 ? "ok" : "MISSED"} (${(g.peak / 1e6).toFixed(1)} MB)`,
  ];
}

// ------------------------------------------------------------------ main

// --only runs one section (e.g. the start-up figures while changing cli.ts).
const only = String(flags.only);
if (only && !["start", "gets", "memory"].includes(only)) die(`--only must be start, gets or memory, not ${only}`);
const sections: string[][] = [];
if (!only || only === "start") sections.push(await benchStartup());
if (!only || only === "gets") sections.push(await benchGets());
if (!only || only === "memory") sections.push(await benchMemory());
console.log(
  [
    `# protocol benchmarks: gostash vs ${ref ? ref.name : "(no reference plugin)"}`,
    `gostash: ${gostashVersion}; bun ${Bun.version}; ${cpus().length} cores; load average at end ${loadavg().map((l) => l.toFixed(2)).join(" ")}`,
    ...(ref ? [`reference: ${ref.note}`] : []),
    ...(alt ? [`compare: ${alt} (${(Bun.spawnSync([alt, "version"]).stdout.toString().trim())})`] : []),
    "",
    ...sections.map((s) => s.join("\n")).join("\n\n").split("\n"),
  ].join("\n"),
);
