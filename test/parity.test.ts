// Drop-in parity with tailscale/go-cache-plugin v0.1.1, derived from the
// real binary (built into .tools/bin by scripts/tools/go-cache-plugin.sh):
// every flag and environment variable its `help` and `help serve` list
// must be accepted by gostash in the same commands (the global ones in
// plugin mode, serve and connect; the serve ones in serve), under the same
// variable, and read to the same value Go's flag package would give. A
// flag go-cache-plugin gains, renames or retypes fails this test until
// gostash follows, so parity cannot drift silently.
//
// Where gostash means something different on purpose (a default, a wider
// range of values), the flag is listed in DELIBERATE below and must be
// explained in the README's drop-in section.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Flags, type FlagSpec, type FlagSpecs } from "../src/config/flags.ts";
import * as groups from "../src/config/options.ts";
import { BIN, ROOT, TOOLS, run, tempDir } from "./helpers/env.ts";

const GCP = join(TOOLS, "bin", "go-cache-plugin");
const tmp = tempDir("gostash-parity-");
afterAll(() => tmp.cleanup());

interface GcpFlag {
  /** As go-cache-plugin names it: "bucket", "c", "v". */
  name: string;
  /** Go's flag type: string, int, int64, duration, or "bool". */
  type: string;
  env: string;
  command: "global" | "serve";
}

/** The flags of one `go-cache-plugin help [command]` page. */
function parseGcpHelp(text: string, command: GcpFlag["command"]): GcpFlag[] {
  const section = text.slice(text.indexOf("\nFlags:\n"), text.search(/\n(Subcommands|Help topics):|$/));
  const out: GcpFlag[] = [];
  const lines = section.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s{1,2}-{1,2}([\w-]+)(?: (\w+))?(?:\t(.*))?$/.exec(lines[i]!);
    if (!m) continue;
    const description = m[3] ?? lines[i + 1] ?? "";
    const env = /\[env: (\w+)\]/.exec(description)?.[1];
    if (!env) throw new Error(`go-cache-plugin help: no [env: ...] for -${m[1]} in ${JSON.stringify(description)}`);
    out.push({ name: m[1]!, type: m[2] ?? "bool", env, command });
  }
  return out;
}

/** Typical values a go-cache-plugin user writes, per Go flag type, and what Go reads them as. */
const SAMPLES: Record<string, { text: string; go: string | number | boolean }[]> = {
  bool: [
    { text: "true", go: true },
    { text: "1", go: true },
    { text: "false", go: false },
  ],
  int: [{ text: "4", go: 4 }],
  int64: [{ text: "1048576", go: 1048576 }],
  duration: [
    { text: "720h", go: 720 * 3600_000 },
    { text: "1h30m", go: 5400_000 },
    { text: "90s", go: 90_000 },
  ],
  string: [{ text: "x", go: "x" }],
};

/** Values that make sense for particular string/int flags (a port, a host list, ...). */
const VALUE_FOR: Record<string, string> = {
  "cache-dir": "CACHE",
  "s3-endpoint-url": "http://127.0.0.1:1",
  region: "us-east-1",
  plugin: "0",
  http: "127.0.0.1:0",
  revproxy: "example.com,files.example.com:8443",
  sumdb: "sum.golang.org",
};

/**
 * gostash flags that go-cache-plugin has too but where gostash's meaning
 * differs on purpose; each must be explained in the README's drop-in section.
 */
const DELIBERATE: Record<string, string> = {
  expiry: "default 5d (Go's own rule) instead of never",
  http: "a bare :port binds loopback, not every interface",
  debug: "true/false and a bare --debug are taken too (every bit / none)",
  plugin: "a Unix socket path is taken too",
  c: "-c bounds S3 downloads (gostash answers every request at once)",
};

let gcpFlags: GcpFlag[] = [];
const help: Record<string, string> = {};

beforeAll(async () => {
  if (!existsSync(GCP)) throw new Error(`${GCP} is missing: run sh scripts/tools/go-cache-plugin.sh (npm test does)`);
  const root = await run([GCP, "help"]);
  const serve = await run([GCP, "help", "serve"]);
  gcpFlags = [...parseGcpHelp(root.stdout + root.stderr, "global"), ...parseGcpHelp(serve.stdout + serve.stderr, "serve")];
  for (const cmd of ["", "serve", "connect"]) help[cmd] = (await run([BIN, ...(cmd ? [cmd] : []), "--help"])).stdout;
}, 60_000);

/** gostash's spec for a go-cache-plugin flag name (long name or one-letter alias). */
function specFor(name: string): [string, FlagSpec] | null {
  for (const group of Object.values(groups) as FlagSpecs[]) {
    for (const [long, spec] of Object.entries(group)) if (long === name || spec.alias?.includes(name)) return [long, spec];
  }
  return null;
}

/**
 * A flag's whole entry in --help (its row and the description lines wrapped
 * under it), with runs of white space folded: help fits the terminal, so
 * "[env X]" may be cut across lines.
 */
function flagEntry(helpText: string, shown: string): string | null {
  const lines = helpText.split("\n");
  const i = lines.findIndex((l) => l.includes(`${shown}=`) || l.includes(`${shown} `) || l.trimEnd().endsWith(shown));
  if (i < 0) return null;
  const entry = [lines[i]!];
  for (let j = i + 1; j < lines.length && /^\s{20,}\S/.test(lines[j]!); j++) entry.push(lines[j]!);
  return entry.join(" ").replace(/\s+/g, " ");
}

const commandsOf = (f: GcpFlag) => (f.command === "global" ? ["", "serve", "connect"] : ["serve"]);
const flagArg = (name: string, value: string) => `${name.length === 1 ? "-" : "--"}${name}=${value}`;

describe("go-cache-plugin v0.1.1's flags and variables", () => {
  test("its help lists what we expect to compare (the parser found them)", () => {
    const names = gcpFlags.map((f) => f.name);
    for (const n of ["bucket", "cache-dir", "debug", "c", "u", "v", "expiry", "plugin", "http", "modproxy", "revproxy", "sumdb"]) expect(names).toContain(n);
    expect(gcpFlags.find((f) => f.name === "debug")?.type).toBe("int");
  });

  test("every one is in gostash's --help of the same commands, with the same variable", () => {
    const missing: string[] = [];
    for (const f of gcpFlags) {
      const spec = specFor(f.name);
      if (!spec || !spec[1].env?.includes(f.env)) {
        missing.push(`${f.name} (${f.env}): no gostash flag with that variable`);
        continue;
      }
      const shown = f.name.length === 1 ? `-${f.name}, --${spec[0]}` : `--${spec[0]}`;
      for (const cmd of commandsOf(f)) {
        const entry = flagEntry(help[cmd]!, shown);
        if (!entry) missing.push(`${f.name}: not in gostash ${cmd || "(plugin mode)"} --help`);
        else if (!entry.includes(`env ${f.env}`)) missing.push(`${f.name}: gostash ${cmd} --help does not name ${f.env}`);
      }
    }
    expect(missing).toEqual([]);
  });

  test("every value go-cache-plugin takes reads the same in gostash, as a flag and as a variable", () => {
    const wrong: string[] = [];
    for (const f of gcpFlags) {
      const [long, spec] = specFor(f.name)!;
      for (const sample of VALUE_FOR[f.name] ? [{ text: VALUE_FOR[f.name]!, go: VALUE_FOR[f.name]! as string | number | boolean }] : SAMPLES[f.type]!) {
        for (const via of ["flag", "env"] as const) {
          const parsed = via === "flag" ? { [long]: spec.type === "boolean" ? sample.go === true : sample.text } : {};
          const env = via === "env" ? { [f.env]: sample.text } : {};
          let got: unknown;
          try {
            const flags = Flags.resolve({ [long]: spec }, parsed, env);
            got = spec.type === "boolean" ? flags.bool(long) : spec.type === "string" ? flags.string(long) : spec.type === "mask" ? flags.mask(long) : flags.number(long);
          } catch (err) {
            got = `error: ${(err as Error).message}`;
          }
          if (got !== sample.go) wrong.push(`${f.name}=${sample.text} (${via}): go-cache-plugin reads ${JSON.stringify(sample.go)}, gostash ${JSON.stringify(got)}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  test("--debug is a bit mask: GOCACHE_DEBUG=2 and --debug=7 are taken; true/false still are", () => {
    const spec = specFor("debug")![1];
    const read = (env: Record<string, string>, parsed: Record<string, unknown> = {}) => Flags.resolve({ debug: spec }, parsed, env).mask("debug");
    expect(read({ GOCACHE_DEBUG: "2" })).toBe(2);
    expect(read({}, { debug: "7" })).toBe(7);
    expect(read({ GOCACHE_DEBUG: "true" })).toBeGreaterThanOrEqual(7);
    expect(read({ GOCACHE_DEBUG: "false" })).toBe(0);
    expect(() => read({ GOCACHE_DEBUG: "lots" })).toThrow("GOCACHE_DEBUG must be a bit mask");
  });

  test("each deliberate difference is explained in the README's drop-in section", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const start = readme.indexOf("## Drop-in for go-cache-plugin");
    expect(start).toBeGreaterThan(0);
    const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
    for (const name of Object.keys(DELIBERATE)) expect(section).toContain(name.length === 1 ? `\`-${name}\`` : `\`--${name}`);
  });
});

describe("the compiled gostash takes them on the command line", () => {
  /** Plugin mode and connect (daemon away: local fallback) with stdin closed: exit 0, only the capability line on stdout. */
  async function runQuick(cmd: string, args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
    const cache = join(tmp.path, "cache");
    const argv = [BIN, ...(cmd ? [cmd] : []), ...args.map((a) => a.replace("CACHE", cache)), ...(cmd === "connect" ? ["1"] : [])];
    return run(argv, { env: { GOCACHE: cache, GOCACHE_S3_ENDPOINT_URL: "http://127.0.0.1:1", ...env }, stdin: "", timeoutMs: 30_000 });
  }

  test("plugin mode and connect: each global flag and variable with a go-cache-plugin value", async () => {
    const failures: string[] = [];
    for (const f of gcpFlags.filter((g) => g.command === "global")) {
      const values = VALUE_FOR[f.name] ? [VALUE_FOR[f.name]!] : SAMPLES[f.type]!.map((s) => s.text);
      for (const cmd of ["", "connect"]) {
        for (const v of values) {
          for (const r of [await runQuick(cmd, [flagArg(f.name, v)], {}), await runQuick(cmd, [], { [f.env]: v.replace("CACHE", join(tmp.path, "cache")) })]) {
            if (r.code !== 0 || r.stdout !== '{"ID":0,"KnownCommands":["get","put","close"]}\n') failures.push(`${cmd || "plugin"} ${f.name}=${v}: exit ${r.code}: ${r.stderr.trim().split("\n").at(-1)}`);
          }
        }
      }
    }
    expect(failures).toEqual([]);
  }, 300_000);

  test("go-cache-plugin's own spellings: `-u 2`, `--debug 7` before the command, GOCACHE_DEBUG=2", async () => {
    for (const args of [["-u", "2"], ["-c", "8", "-v"], ["--debug", "7"], ["--debug"]]) {
      const r = await runQuick("", args, {});
      expect(r.code).toBe(0);
    }
    const r = await run([BIN, "--debug", "7", "connect", "1"], { env: { GOCACHE: join(tmp.path, "cache") }, stdin: "", timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("cannot reach the daemon at 127.0.0.1:1");
    expect((await runQuick("", [], { GOCACHE_DEBUG: "2" })).code).toBe(0);
  }, 60_000);

  test("--debug bits mean go-cache-plugin's subsystems: 1 logs each build-cache request, 4 does not", async () => {
    const get = `{"ID":1,"Command":"get","ActionID":"${Buffer.alloc(32, 7).toString("base64")}"}\n\n`;
    const line = /gostash: build cache: get 0707070707070707 miss/;
    const withBit = await run([BIN, "--debug=1"], { env: { GOCACHE: join(tmp.path, "cache") }, stdin: get, timeoutMs: 30_000 });
    expect(withBit.stderr).toMatch(line);
    expect(withBit.stdout).toContain('{"ID":1,"Miss":true}');
    const without = await run([BIN], { env: { GOCACHE: join(tmp.path, "cache"), GOCACHE_DEBUG: "4" }, stdin: get, timeoutMs: 30_000 });
    expect(without.stderr).not.toMatch(line);
  });

  test("serve: every serve and global flag at once, then every variable at once", async () => {
    const all = gcpFlags.filter((f) => f.name !== "plugin");
    const value = (f: GcpFlag) => (VALUE_FOR[f.name] ?? SAMPLES[f.type]![0]!.text).replace("CACHE", join(tmp.path, "serve-cache"));
    for (const mode of ["flags", "env"] as const) {
      const args = ["serve", "--plugin=0", ...(mode === "flags" ? all.map((f) => flagArg(f.name, value(f))) : [])];
      const env = mode === "env" ? Object.fromEntries(all.map((f) => [f.env, value(f)])) : {};
      const proc = Bun.spawn([BIN, ...args], { env: { ...process.env, GOCACHE_S3_ENDPOINT_URL: "http://127.0.0.1:1", ...env }, stdout: "pipe", stderr: "pipe" });
      const timer = setTimeout(() => proc.kill(9), 30_000);
      let err = "";
      for await (const c of proc.stderr) {
        err += new TextDecoder().decode(c);
        if (err.includes("gostash serve: plugin on")) break;
      }
      proc.kill("SIGTERM");
      const code = await proc.exited;
      clearTimeout(timer);
      expect({ mode, err: err.includes("reverse proxy for example.com,files.example.com:8443") ? "started with the reverse proxy" : err }).toEqual({ mode, err: "started with the reverse proxy" });
      expect(code).toBe(0);
    }
  }, 120_000);
});
