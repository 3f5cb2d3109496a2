// The compiled binary's command line and its stdout discipline.
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CAPABILITY_LINE } from "../src/cacheprog/protocol.ts";
import { localFlags, logFlags, modFlags, modproxyFlags, s3Flags } from "../src/config/options.ts";
import { BIN, run, tempDir } from "./helpers/env.ts";

const tmp = tempDir("gostash-cli-");
afterAll(() => tmp.cleanup());
const b64 = (hex: string) => Buffer.from(hex, "hex").toString("base64");
const sha = (d: string | Uint8Array) => createHash("sha256").update(d).digest("hex");

/** The --help entry of a flag: its line and the description lines under it, joined. */
function entryOf(help: string, flag: string): string {
  const lines = help.split("\n");
  const at = lines.findIndex((l) => new RegExp(`^ {2}(-., )? *--${flag}[= ]|^ {2}(-., )? *--${flag}$`).test(l));
  if (at < 0) return "";
  const more = lines.slice(at + 1);
  // Entries start within the first 6 columns, their wrapped descriptions far right of that.
  const end = more.findIndex((l) => !/^ {8,}\S/.test(l));
  return [lines[at], ...more.slice(0, end < 0 ? more.length : end)].map((l) => (l ?? "").trim()).join(" ");
}

/** Every stdout line in plugin mode must be a JSON object. */
function jsonLines(stdout: string): Record<string, unknown>[] {
  expect(stdout.endsWith("\n") || stdout === "").toBe(true);
  return stdout
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      const v = JSON.parse(l);
      expect(typeof v).toBe("object");
      return v;
    });
}

describe("command line", () => {
  test("version", async () => {
    const r = await run([BIN, "version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^gostash \d+\.\d+\.\d+\S* \(bun [\d.]+, linux\/x64\)\n$/);
  });

  test("--help lists every flag with its environment variable", async () => {
    const r = await run([BIN, "--help"], { env: { NO_COLOR: "1" } });
    expect(r.code).toBe(0);
    for (const [name, spec] of Object.entries({ ...logFlags, ...localFlags, ...s3Flags })) {
      expect(entryOf(r.stdout, name)).toContain(`env ${(spec as { env: string[] }).env[0]}`);
    }
    // go-cache-plugin's names
    const flat = r.stdout.replace(/\s+/g, " ");
    for (const env of ["GOCACHE_DIR", "GOCACHE_S3_BUCKET", "GOCACHE_KEY_PREFIX", "GOCACHE_MIN_SIZE", "GOCACHE_S3_CONCURRENCY", "GOCACHE_CONCURRENCY", "GOCACHE_EXPIRY", "GOCACHE_VERBOSE", "GOCACHE_METRICS"]) {
      expect(flat).toContain(`env ${env}`);
    }
  });

  test("--help piped (not a terminal) is plain text, even without NO_COLOR", async () => {
    const env = { ...process.env } as Record<string, string | undefined>;
    delete env.NO_COLOR;
    delete env.FORCE_COLOR;
    for (const args of [["--help"], ["mod", "export", "--help"]]) {
      const r = await run([BIN, ...args], { env });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("--verbose");
      expect(r.stdout.includes("\x1b")).toBe(false);
    }
  });

  test("mod import --help and mod export --help list their own flags with their environment variables", async () => {
    const cases: [string[], Record<string, { env?: string[] }>, string[]][] = [
      [["mod", "import", "--help"], { "go-sum": modFlags["go-sum"], "allow-unverified": modFlags["allow-unverified"], private: modproxyFlags.private, sumdb: modproxyFlags.sumdb }, ["out", "go-mod"]],
      [["mod", "--help", "export"], { out: modFlags.out, "go-mod": modFlags["go-mod"], goproxy: modFlags.goproxy }, ["go-sum", "private"]],
    ];
    for (const [args, own, others] of cases) {
      const r = await run([BIN, ...args], { env: { NO_COLOR: "1" } });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage:\n  gostash mod ${args.includes("import") ? "import" : "export"} [options]`);
      for (const [name, spec] of Object.entries(own)) expect(entryOf(r.stdout, name)).toContain(`env ${spec.env![0]}`);
      for (const name of others) expect(r.stdout).not.toContain(`--${name}=`);
    }
    // mod itself still lists its subcommands.
    const mod = await run([BIN, "mod", "--help"], { env: { NO_COLOR: "1" } });
    expect(mod.stdout).toContain("Usage:\n  gostash mod <command> [options]");
    expect(mod.stdout).toMatch(/\n  import +Load a /);
    expect(mod.stdout).toMatch(/\n  export +Write the modules /);
  });

  test("an unknown flag is a clear error on stderr only: stdout, the protocol, stays empty (#15 item 1)", async () => {
    const r = await run([BIN, "--cache-dri=/tmp/x"], { stdin: "" });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("gostash: config: unknown flag --cache-dri\nRun 'gostash --help' for usage.\n");
    expect(r.stdout).toBe("");
  });

  test("--version and -V print the version (no capability line, no error) (#15 item 1)", async () => {
    for (const flag of ["--version", "-V"]) {
      const r = await run([BIN, flag], { stdin: "" });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^gostash \d+\.\d+\.\d+\S* \(bun [\d.]+, linux\/x64\)\n$/);
    }
  });

  test("an error names what the user set: the variable, or the flag (#15 item 8)", async () => {
    const env = await run([BIN], { stdin: "", env: { GOCACHE_EXPIRY: "5days" } });
    expect(env.code).toBe(2);
    expect(env.stderr).toStartWith('gostash: config: GOCACHE_EXPIRY: cannot parse duration "5days"');
    expect(env.stdout).toBe("");
    const flag = await run([BIN, "--expiry", "5days"], { stdin: "" });
    expect(flag.stderr).toStartWith('gostash: config: --expiry: cannot parse duration "5days"');
    const dbg = await run([BIN, "connect", "5930"], { stdin: "", env: { GOCACHE_DEBUG: "maybe" } });
    expect(dbg.code).toBe(2);
    expect(dbg.stderr).toStartWith('gostash: config: GOCACHE_DEBUG must be a bit mask (a whole number such as 1, 2, 4 or 7) or true or false, got "maybe"');
    expect(dbg.stderr).toContain("Run 'gostash connect --help' for usage.");
    expect(dbg.stdout).toBe("");
  });

  test("a value flag never swallows the next flag (#15 item 6)", async () => {
    const r = await run([BIN, "serve", "--http", "--plugin=18081"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("gostash: config: --http needs a value: --http=<[host]:port>\nRun 'gostash serve --help' for usage.\n");
    const p = await run([BIN, "--cache-dir", "--verbose"], { stdin: "" });
    expect(p.code).toBe(2);
    expect(p.stderr).toStartWith("gostash: config: --cache-dir needs a value: --cache-dir=<dir>\n");
    expect(p.stdout).toBe("");
  });

  test("subcommand errors point at the subcommand's help (#15 item 8)", async () => {
    for (const [args, help] of [
      [["serve", "--plugin=1", "--bogus"], "gostash serve"],
      [["serve"], "gostash serve"],
      [["mod", "import", "--bogus", "x"], "gostash mod import"],
      [["mod", "export", "--bogus"], "gostash mod export"],
      [["connect", "--bogus"], "gostash connect"],
      [["revproxy", "ca", "--bogus"], "gostash revproxy ca"],
      [["ci", "mtimes", "--bogus"], "gostash ci mtimes"],
      [["ci", "summary", "--bogus"], "gostash ci summary"],
    ] as const) {
      const r = await run([BIN, ...args], { stdin: "" });
      expect(r.code).toBe(2);
      expect(r.stderr).toEndWith(`\nRun '${help} --help' for usage.\n`);
      expect(r.stderr).not.toContain("Run 'gostash --help'");
    }
  });

  test("a listen failure is a one-line start-up error, exit 1, not a config error (#15 item 8)", async () => {
    const busy = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      for (const args of [[`--plugin=${busy.port}`], ["--plugin=127.0.0.1:0", `--http=127.0.0.1:${busy.port}`]]) {
        const r = await run([BIN, "serve", ...args, `--cache-dir=${join(tmp.path, "listen")}`], { timeoutMs: 30_000 });
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(new RegExp(`^gostash: serve: (--plugin|http): cannot listen on 127\\.0\\.0\\.1:${busy.port}\\b.*\\n$`));
        expect(r.stderr).not.toContain("config:");
        expect(r.stderr).not.toContain("--help");
      }
    } finally {
      busy.stop(true);
    }
  });

  test("a bad value is a clear error", async () => {
    const r = await run([BIN, "--max-size=lots"], { stdin: "" });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--max-size: cannot parse size");
  });

  test("an endpoint that is not an http(s) URL stops before the capability line, in plugin mode and serve alike, naming where it came from", async () => {
    const r = await run([BIN, "--s3-endpoint-url=notaurl", "--bucket=b"], { stdin: "" });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain('--s3-endpoint-url: "notaurl" is not an http:// or https:// URL');
    const e = await run([BIN, "serve", "--plugin=/nonexistent/d.sock", "--bucket=b"], { stdin: "", env: { ...process.env, GOCACHE_S3_ENDPOINT_URL: "ftp://x" } });
    expect(e.code).toBe(2);
    expect(e.stderr).toContain('GOCACHE_S3_ENDPOINT_URL: "ftp://x" is not an http:// or https:// URL');
  });

  test("mod import of a path that is not there: one line naming it and pointing at the help, no stack trace", async () => {
    for (const [args, line] of [
      [["mod", "import", "/nonexistent/tree"], "gostash: config: mod import: /nonexistent/tree: no such file or directory"],
      [["mod", "import", "--go-sum=/nonexistent.sum", "/tmp"], "gostash: config: --go-sum: /nonexistent.sum: no such file or directory"],
    ] as const) {
      const r = await run([BIN, ...args], { stdin: "" });
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`${line}\nRun 'gostash mod import --help' for usage.\n`);
    }
  });

  test("a command group run without one of its commands says which it has, exit 2 (it did nothing, silently, exit 0)", async () => {
    for (const [group, names] of [["mod", "import, export"], ["ci", "mtimes, summary"], ["revproxy", "ca"]] as const) {
      const r = await run([BIN, group], { stdin: "" });
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe(`gostash ${group}: name a command: ${names}\nRun 'gostash ${group} --help' for usage.\n`);
    }
  });

  test("a timeout longer than a timer can wait (about 24.8 days) is refused, not turned into 1 ms; a long --expiry is fine", async () => {
    const r = await run([BIN, "--request-timeout=30d"], { stdin: "" });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("--request-timeout: 30 days is longer than a timeout can be (at most 24 days)");
    const ok = await run([BIN, "--expiry=720h"], { stdin: "" });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toStartWith('{"ID":0,');
  });

  test("flags may be given as --flag value, and env vars configure the same", async () => {
    const dir = join(tmp.path, "viaflag");
    const body = "via flag";
    const input = `${JSON.stringify({ ID: 1, Command: "put", ActionID: b64(sha("f")), OutputID: b64(sha(body)), BodySize: body.length })}\n\n"${Buffer.from(body).toString("base64")}"\n${JSON.stringify({ ID: 2, Command: "close" })}\n\n`;
    const r = await run([BIN, "--cache-dir", dir], { stdin: input });
    expect(r.code).toBe(0);
    const a = jsonLines(r.stdout);
    expect(String(a[1]!.DiskPath).startsWith(dir)).toBe(true);
    const envDir = join(tmp.path, "viaenv");
    const r2 = await run([BIN], { stdin: input, env: { GOCACHE_DIR: envDir, GOCACHE: join(tmp.path, "notthis") } });
    expect(String(jsonLines(r2.stdout)[1]!.DiskPath).startsWith(envDir)).toBe(true);
    const r3 = await run([BIN], { stdin: input, env: { GOCACHE_DIR: "", GOCACHE: join(tmp.path, "gocache") } });
    expect(String(jsonLines(r3.stdout)[1]!.DiskPath).startsWith(join(tmp.path, "gocache"))).toBe(true);
  });
});

describe("plugin mode over a real pipe", () => {
  test("capability line first; close flushes every answer and exits 0; logs only on stderr", async () => {
    const dir = join(tmp.path, "pipe");
    let input = "";
    for (let i = 0; i < 200; i++) {
      const body = `body ${i}`.repeat(i);
      const head = { ID: 2 * i + 1, Command: "put", ActionID: b64(sha(`p${i}`)), OutputID: b64(sha(body)), ...(body ? { BodySize: body.length } : {}) };
      input += `${JSON.stringify(head)}\n\n${body ? `"${Buffer.from(body).toString("base64")}"\n` : ""}`;
      input += `${JSON.stringify({ ID: 2 * i + 2, Command: "get", ActionID: b64(sha(`p${i}`)) })}\n\n`;
    }
    input += `${JSON.stringify({ ID: 1000, Command: "close" })}\n\n`;
    const r = await run([BIN, `--cache-dir=${dir}`, "-v", "--metrics"], { stdin: input });
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith(CAPABILITY_LINE)).toBe(true);
    const answers = jsonLines(r.stdout);
    expect(answers.length).toBe(402);
    const ids = answers.map((a) => a.ID as number).sort((x, y) => x - y);
    expect(ids).toEqual([0, ...Array.from({ length: 400 }, (_, i) => i + 1), 1000]);
    for (const a of answers.filter((a) => (a.ID as number) % 2 === 0 && a.ID !== 0 && a.ID !== 1000)) {
      expect(a.Miss).toBeUndefined();
      expect(readFileSync(a.DiskPath as string).length).toBe(a.Size as number);
    }
    expect(r.stderr).toContain("gostash: gets 200, hits 200");
  });

  test("EOF without close: answers everything and exits 0", async () => {
    const input = `${JSON.stringify({ ID: 1, Command: "get", ActionID: b64(sha("nothing")) })}\n\n`;
    const r = await run([BIN, `--cache-dir=${join(tmp.path, "eof")}`], { stdin: input });
    expect(r.code).toBe(0);
    expect(jsonLines(r.stdout)).toEqual([{ ID: 0, KnownCommands: ["get", "put", "close"] }, { ID: 1, Miss: true }]);
  });

  test("broken framing: clear message on stderr, non-zero exit, never garbage on stdout", async () => {
    const input = `${JSON.stringify({ ID: 1, Command: "get", ActionID: b64(sha("x")) })}\n\nthis is { not json\n`;
    const r = await run([BIN, `--cache-dir=${join(tmp.path, "garbage")}`], { stdin: input });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("request is not JSON");
    expect(jsonLines(r.stdout).length).toBeGreaterThanOrEqual(1);
  });

  test("a 300 MB put through the binary stays under 100 MB of memory", async () => {
    const dir = join(tmp.path, "big");
    const size = 300 * 1024 * 1024;
    const block = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 2654435761) >>> 24);
    const blockText = Buffer.from(Buffer.from(block).toString("base64"));
    const hash = createHash("sha256");
    for (let n = 0; n < size; n += block.length) hash.update(block);
    const outputID = hash.digest("hex");
    const p = Bun.spawn([BIN, `--cache-dir=${dir}`], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => p.kill(9), 120_000);
    p.stdin.write(`${JSON.stringify({ ID: 1, Command: "put", ActionID: b64(sha("big")), OutputID: b64(outputID), BodySize: size })}\n\n"`);
    for (let n = 0; n < size; n += block.length) {
      p.stdin.write(blockText);
      await p.stdin.flush();
    }
    p.stdin.write(`"\n`);
    await p.stdin.flush();
    // wait for the answer, then read the peak RSS before closing
    const reader = p.stdout.getReader();
    let out = "";
    while (!out.includes('"ID":1,')) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    const status = readFileSync(`/proc/${p.pid}/status`, "utf8");
    const hwmKiB = Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]);
    p.stdin.write(`${JSON.stringify({ ID: 2, Command: "close" })}\n\n`);
    await p.stdin.end();
    expect(await p.exited).toBe(0);
    clearTimeout(timer);
    const put = JSON.parse(out.split("\n").find((l) => l.includes('"ID":1,'))!);
    expect(Bun.file(put.DiskPath).size).toBe(size);
    expect(hwmKiB * 1024).toBeLessThan(100 * 1024 * 1024);
  }, 180_000);
});
