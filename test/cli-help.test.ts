// --help as a person sees it (issue #15, items 1 and 2): lines that fit the
// terminal (80 columns when not a terminal) with no trailing spaces, flags
// grouped by what they configure, and `gostash` typed at a real
// pseudo-terminal (util-linux `script`) printing the help and exiting 0
// instead of the protocol's JSON and silence.
import { describe, expect, test } from "bun:test";
import { columns, paragraphs, wrap } from "../src/cli/text-layout.ts";
import { limitFlags, localFlags, logFlags, modproxyFlags, s3Flags, serveFlags } from "../src/config/options.ts";
import { BIN, run } from "./helpers/env.ts";

const COMMANDS = [[], ["serve"], ["connect"], ["mod"], ["mod", "import"], ["mod", "export"], ["completion"], ["version"]];

/** Lines wider than width or ending in a space (ANSI colours and the terminal's \r left out). */
function badLines(text: string, width: number): string[] {
  return Bun.stripANSI(text)
    .replace(/\r/g, "")
    .split("\n")
    .filter((l) => l.length > width || /\s$/.test(l));
}

describe("help text", () => {
  test("piped: every line fits 80 columns, none ends in a space, no colours", async () => {
    for (const args of COMMANDS) {
      const r = await run([BIN, ...args, "--help"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("Usage:");
      expect(r.stdout.includes("\x1b")).toBe(false);
      expect({ args, bad: badLines(r.stdout, 80) }).toEqual({ args, bad: [] });
    }
  });

  test("serve --help: flags grouped under headings, each flag once", async () => {
    const r = await run([BIN, "serve", "--help"]);
    const headings = r.stdout.split("\n").filter((l) => /^\S.*:$/.test(l));
    expect(headings).toEqual(["Usage:", "Daemon:", "Local cache:", "S3 (shared cache):", "Module proxy:", "Reverse proxy:", "Limits:", "Logging:"]);
    const section = (h: string) => r.stdout.split(`\n${h}\n`)[1]!.split("\n\n")[0]!;
    for (const [h, group] of [
      ["Daemon:", serveFlags],
      ["Local cache:", localFlags],
      ["S3 (shared cache):", s3Flags],
      ["Module proxy:", modproxyFlags],
      ["Limits:", limitFlags],
      ["Logging:", logFlags],
    ] as const) {
      for (const name of Object.keys(group)) expect(section(h)).toMatch(new RegExp(`^ {2}(-., | {4})--${name}\\b`, "m"));
    }
    const all = Object.keys({ ...serveFlags, ...localFlags, ...s3Flags, ...modproxyFlags, ...limitFlags, ...logFlags });
    for (const name of all) expect(r.stdout.match(new RegExp(`^ {2}(-., | {4})--${name}(=|$|\\s)`, "gm"))).toHaveLength(1);
  });

  test("layout: words wrap at the width, long words are cut, descriptions wrap in their column", () => {
    expect(wrap("one two three four", 9)).toEqual(["one two", "three", "four"]);
    expect(wrap("abcdefghij xy", 4)).toEqual(["abcd", "efgh", "ij", "xy"]);
    expect(paragraphs("a b c\n  keep  this   \nd e", 3)).toEqual(["a b", "c", "  keep  this", "d e"]);
    const rows = [
      { left: "--a", right: "one two three four five" },
      { left: "--a-very-long-flag-name", right: "six seven" },
    ];
    expect(columns(rows, { width: 40, maxLeft: 10 })).toEqual([
      "  --a         one two three four five",
      "  --a-very-long-flag-name",
      "              six seven",
    ]);
    // Too narrow for two columns: descriptions go under their entry.
    expect(columns([{ left: "--flag", right: "a description" }], { width: 20 })).toEqual(["  --flag", "      a description"]);
  });
});

/** Runs a shell command line on a new pseudo-terminal; its output as the terminal shows it. */
async function onTerminal(cmdline: string, env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  const p = Bun.spawn(["script", "-qec", cmdline, "/dev/null"], {
    env: { PATH: process.env.PATH!, TERM: "xterm", ...env },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => p.kill(9), 60_000);
  const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
  clearTimeout(timer);
  p.stdin.end();
  return { code, out: out.replace(/\r/g, "") };
}

describe("at a terminal (pseudo-terminal through script)", () => {
  test("`gostash` typed at a terminal prints the help and exits 0; lines fit 80 columns", async () => {
    const r = await onTerminal(`stty cols 80 rows 50; exec '${BIN}'`);
    expect(r.code).toBe(0);
    expect(r.out).not.toContain('"KnownCommands"');
    expect(Bun.stripANSI(r.out)).toContain("Usage:\n  gostash [options]\n  gostash <command> [options]");
    expect(r.out).toContain("go env -w GOCACHEPROG=$(command -v gostash)");
    // A terminal gets bold headings; they take no columns.
    expect(r.out).toContain("\x1b[1mUsage:\x1b[22m");
    expect(badLines(r.out, 80)).toEqual([]);
  }, 90_000);

  test("help follows the terminal's width, and NO_COLOR turns the bold off", async () => {
    const r = await onTerminal(`stty cols 60 rows 50; exec '${BIN}' serve --help`, { NO_COLOR: "1" });
    expect(r.code).toBe(0);
    expect(r.out.includes("\x1b")).toBe(false);
    expect(badLines(r.out, 60)).toEqual([]);
    // It uses the width it has: some line is wider than 50.
    expect(r.out.split("\n").some((l) => l.length > 50)).toBe(true);
  }, 90_000);

  test("--version at a terminal prints the version, and plugin flags at a terminal still mean help", async () => {
    const v = await onTerminal(`exec '${BIN}' --version`);
    expect(v.code).toBe(0);
    expect(v.out).toMatch(/^gostash \S+ \(bun [\d.]+, linux\/x64\)\n$/);
    const h = await onTerminal(`stty cols 80; exec '${BIN}' --cache-dir=/tmp/x -v`);
    expect(h.code).toBe(0);
    expect(h.out).toContain("Usage:");
    expect(h.out).not.toContain("KnownCommands");
  }, 90_000);
});
