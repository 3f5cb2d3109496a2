// scripts/install.sh against the real release archives served from a local
// HTTP server, in a clean temporary HOME: it installs a working binary; a
// corrupted archive or SHA256SUMS makes it refuse and install nothing; and
// faked uname/ldd/sysctl output picks the right file for other machines.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Release } from "../../scripts/release.ts";
import { ROOT, tempDir } from "../helpers/env.ts";
import { BUILD_TIMEOUT_MS, TEST_VERSION, testRelease } from "./fixture.ts";

const INSTALL = join(ROOT, "scripts", "install.sh");
const SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin";

let rel: Release;
let server: ReturnType<typeof Bun.serve>;
let base = "";
const requests: string[] = [];

/**
 * /good/ serves the release as built; /badarchive/ flips one byte in every
 * archive; /badsums/ alters SHA256SUMS; /gzonly/ is a release from before
 * the .tar.xz archives (SHA256SUMS without them).
 */
async function handle(req: Request): Promise<Response> {
  const url = new URL(req.url);
  requests.push(url.pathname);
  const m = /^\/(good|badarchive|badsums|gzonly)\/([^/]+)$/.exec(url.pathname);
  if (!m) return new Response("not found", { status: 404 });
  const [, mode, name] = m as unknown as [string, string, string];
  const path = join(rel.outDir, name);
  if (!existsSync(path) || name.startsWith(".")) return new Response("not found", { status: 404 });
  if (mode === "badarchive" && name !== "SHA256SUMS") {
    const bytes = new Uint8Array(await Bun.file(path).arrayBuffer());
    bytes[bytes.length >> 1]! ^= 0x01;
    return new Response(bytes);
  }
  if (mode === "gzonly" && name === "SHA256SUMS") {
    return new Response(readFileSync(path, "utf8").split("\n").filter((l) => !l.endsWith(".tar.xz")).join("\n"));
  }
  if (mode === "gzonly" && name.endsWith(".tar.xz")) return new Response("not found", { status: 404 });
  if (mode === "badsums" && name === "SHA256SUMS") {
    const text = readFileSync(path, "utf8").replace(/^([0-9a-f])/gm, (c) => (c === "0" ? "1" : "0"));
    return new Response(text);
  }
  return new Response(Bun.file(path));
}

beforeAll(async () => {
  rel = await testRelease();
  server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: handle });
  base = `http://127.0.0.1:${server.port}`;
}, BUILD_TIMEOUT_MS);

afterAll(() => server?.stop(true));

interface ShResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs install.sh with a clean environment (only what is given, plus PATH and HOME). */
async function sh(args: string[], env: Record<string, string>, script = INSTALL, timeoutMs = 120_000): Promise<ShResult> {
  const p = Bun.spawn(["/bin/sh", script, ...args], {
    env: { PATH: SYSTEM_PATH, LC_ALL: "C", ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => p.kill(9), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

function listTree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true }).map(String).sort();
}

describe("install.sh against a local release server", () => {
  test("installs a working binary into $HOME/.local/bin and prints the PATH line and how to enable it", async () => {
    const home = tempDir();
    try {
      const before = requests.length;
      const r = await sh(["--url", `${base}/good`], { HOME: home.path, CI: "true" });
      // xz is on the PATH: the smaller .tar.xz is what it downloads.
      expect(requests.slice(before)).toEqual(["/good/SHA256SUMS", `/good/gostash-${TEST_VERSION}-linux-x64.tar.xz`]);
      expect(r.stderr).not.toContain("error");
      expect(r.code).toBe(0);
      const bin = join(home.path, ".local", "bin", "gostash");
      expect(statSync(bin).mode & 0o777).toBe(0o755);
      expect(listTree(join(home.path, ".local"))).toEqual(["bin", "bin/gostash"]); // no temp files left behind
      const v = Bun.spawnSync([bin, "version"]);
      expect(v.stdout.toString()).toBe(`gostash ${TEST_VERSION} (bun ${Bun.version}, linux/x64)\n`);
      expect(r.stderr).toContain(`Installed gostash ${TEST_VERSION} (linux-x64): ${bin}`);
      expect(r.stderr).toContain(`export PATH="${join(home.path, ".local", "bin")}:$PATH"`);
      expect(r.stderr).toContain(`go env -w GOCACHEPROG=${bin}`);
      expect(r.stdout).toBe("");
    } finally {
      home.cleanup();
    }
  }, 180_000);

  test("--prefix and --version (with or without v), GOSTASH_INSTALL, and GITHUB_PATH", async () => {
    const home = tempDir();
    try {
      const prefix = join(home.path, "opt", "tools");
      const r = await sh(["--prefix", prefix, `--version=v${TEST_VERSION}`, "--url", `${base}/good/`], { HOME: home.path, CI: "1" });
      expect(r.code).toBe(0);
      expect(existsSync(join(prefix, "bin", "gostash"))).toBe(true);
      expect(existsSync(join(home.path, ".local"))).toBe(false);

      const ghPath = join(home.path, "github_path");
      writeFileSync(ghPath, "");
      const envPrefix = join(home.path, "env-prefix");
      const r2 = await sh([], {
        HOME: home.path,
        CI: "1",
        GOSTASH_INSTALL: envPrefix,
        GOSTASH_VERSION: TEST_VERSION,
        GOSTASH_DOWNLOAD_URL: `${base}/good`,
        GITHUB_PATH: ghPath,
        PATH: `${join(envPrefix, "bin")}:${SYSTEM_PATH}`,
      });
      expect(r2.code).toBe(0);
      expect(existsSync(join(envPrefix, "bin", "gostash"))).toBe(true);
      expect(readFileSync(ghPath, "utf8")).toBe(`${join(envPrefix, "bin")}\n`);
      expect(r2.stderr).toContain("already on your PATH");
    } finally {
      home.cleanup();
    }
  }, 180_000);

  for (const [mode, what] of [
    ["badarchive", "a corrupted archive"],
    ["badsums", "a corrupted SHA256SUMS"],
  ] as const) {
    test(`${what}: refuses, installs nothing, leaves an existing install alone`, async () => {
      const home = tempDir();
      try {
        const r = await sh(["--url", `${base}/${mode}`], { HOME: home.path, CI: "1" });
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain("checksum mismatch");
        expect(r.stderr).toContain("refusing to install");
        expect(existsSync(join(home.path, ".local"))).toBe(false);

        // An earlier install stays exactly as it was.
        const bin = join(home.path, ".local", "bin");
        mkdirSync(bin, { recursive: true });
        writeFileSync(join(bin, "gostash"), "#!/bin/sh\necho old\n", { mode: 0o755 });
        const r2 = await sh(["--url", `${base}/${mode}`], { HOME: home.path, CI: "1" });
        expect(r2.code).not.toBe(0);
        expect(readFileSync(join(bin, "gostash"), "utf8")).toBe("#!/bin/sh\necho old\n");
        expect(listTree(bin)).toEqual(["gostash"]);
      } finally {
        home.cleanup();
      }
    }, 180_000);
  }

  test("an unreleased version or an unreachable URL fails clearly and installs nothing", async () => {
    const home = tempDir();
    try {
      const r = await sh(["--url", `${base}/good`, "--version", "0.0.1"], { HOME: home.path, CI: "1" });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("no gostash-0.0.1-linux-x64.tar.gz in");
      const r2 = await sh(["--url", `${base}/nothing-here`], { HOME: home.path, CI: "1" });
      expect(r2.code).not.toBe(0);
      expect(r2.stderr).toContain(`cannot download ${base}/nothing-here/SHA256SUMS`);
      const r3 = await sh(["--bogus"], { HOME: home.path, CI: "1" });
      expect(r3.code).not.toBe(0);
      expect(r3.stderr).toContain("unknown option: --bogus");
      const r4 = await sh(["--url", `${base}/good`], { CI: "1" }); // no HOME, no prefix
      expect(r4.code).not.toBe(0);
      expect(r4.stderr).toContain("no install prefix");
      expect(existsSync(join(home.path, ".local"))).toBe(false);
    } finally {
      home.cleanup();
    }
  }, 60_000);

  test("works with wget when there is no curl", async () => {
    const home = tempDir();
    try {
      // A PATH with only the tools the script needs, and wget instead of curl.
      const pathDir = join(home.path, "path");
      mkdirSync(pathDir);
      const tools = ["uname", "awk", "tr", "wc", "mktemp", "rm", "mkdir", "cp", "mv", "chmod", "tar", "gzip", "sha256sum", "ldd", "grep", "wget"];
      for (const t of tools) {
        const found = Bun.which(t, { PATH: SYSTEM_PATH });
        if (!found) throw new Error(`test needs ${t} on ${SYSTEM_PATH}`);
        symlinkSync(found, join(pathDir, t));
      }
      const before = requests.length;
      const r = await sh(["--url", `${base}/good`], { HOME: home.path, CI: "1", PATH: pathDir });
      expect(r.stderr).not.toContain("error");
      expect(r.code).toBe(0);
      expect(Bun.spawnSync([join(home.path, ".local", "bin", "gostash"), "version"]).exitCode).toBe(0);
      // No xz on this PATH (and GNU tar does not link liblzma): the .tar.gz.
      expect(requests.slice(before)).toEqual(["/good/SHA256SUMS", `/good/gostash-${TEST_VERSION}-linux-x64.tar.gz`]);
    } finally {
      home.cleanup();
    }
  }, 180_000);

  test("a release without .tar.xz archives (older ones): the .tar.gz, though xz is there", async () => {
    const home = tempDir();
    try {
      const before = requests.length;
      const r = await sh(["--url", `${base}/gzonly`, "--version", TEST_VERSION], { HOME: home.path, CI: "1" });
      expect(r.code).toBe(0);
      expect(requests.slice(before)).toEqual(["/gzonly/SHA256SUMS", `/gzonly/gostash-${TEST_VERSION}-linux-x64.tar.gz`]);
      expect(Bun.spawnSync([join(home.path, ".local", "bin", "gostash"), "version"]).stdout.toString()).toStartWith(`gostash ${TEST_VERSION} `);
    } finally {
      home.cleanup();
    }
  }, 180_000);

  test("on a terminal it asks first, unless CI is set or --yes is given", async () => {
    // util-linux `script` runs the installer on a pseudo-terminal, so /dev/tty works.
    const onTty = async (args: string, env: Record<string, string>, answer: string) => {
      const p = Bun.spawn(["script", "-qec", `/bin/sh '${INSTALL}' ${args}`, "/dev/null"], {
        env: { PATH: SYSTEM_PATH, TERM: "dumb", ...env },
        stdin: new TextEncoder().encode(answer),
        stdout: "pipe",
        stderr: "pipe",
      });
      const timer = setTimeout(() => p.kill(9), 120_000);
      const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
      clearTimeout(timer);
      return { out, code };
    };
    const home = tempDir();
    try {
      const no = await onTty(`--url ${base}/good`, { HOME: home.path }, "n\n");
      expect(no.out).toContain(`Install gostash ${TEST_VERSION} (linux-x64) as ${join(home.path, ".local", "bin", "gostash")}? [Y/n]`);
      expect(no.out).toContain("cancelled");
      expect(no.code).not.toBe(0);
      expect(existsSync(join(home.path, ".local"))).toBe(false);

      for (const [args, env] of [
        [`--url ${base}/good`, { CI: "true" }],
        [`--url ${base}/good --yes`, {}],
      ] as const) {
        const r = await onTty(args, { HOME: home.path, ...env }, "n\n");
        expect(r.out).not.toContain("[Y/n]");
        expect(r.out).toContain("Installed gostash");
        expect(r.code).toBe(0);
      }
    } finally {
      home.cleanup();
    }
  }, 240_000);

  test("a cut-off download of the script does nothing", async () => {
    const home = tempDir();
    try {
      const text = readFileSync(INSTALL, "utf8");
      expect(text.trimEnd().split("\n").at(-1)).toBe('main "$@"');
      const lastLine = text.lastIndexOf('main "$@"');
      const cuts = [0.1, 0.3, 0.5, 0.7, 0.9].map((f) => Math.floor(text.length * f)).concat([lastLine, lastLine + 3]);
      const before = requests.length;
      for (const cut of cuts) {
        const part = join(home.path, `part-${cut}.sh`);
        writeFileSync(part, text.slice(0, cut));
        await sh(["--url", `${base}/good`], { HOME: home.path, CI: "1" }, part, 30_000);
      }
      expect(requests.length).toBe(before); // not one download started
      expect(existsSync(join(home.path, ".local"))).toBe(false);
    } finally {
      home.cleanup();
    }
  }, 120_000);
});

describe("install.sh platform detection (faked uname, ldd, sysctl)", () => {
  let fake: { path: string; cleanup: () => void };
  beforeAll(() => {
    fake = tempDir();
    const w = (name: string, body: string) => {
      writeFileSync(join(fake.path, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(fake.path, name), 0o755);
    };
    w("uname", 'case "$1" in -s) echo "$FAKE_S" ;; -m) echo "$FAKE_M" ;; *) echo "$FAKE_S" ;; esac');
    // glibc's ldd prints its version on stdout; musl's prints to stderr and exits 1.
    w(
      "ldd",
      'if [ "$FAKE_LIBC" = musl ]; then printf "musl libc (%s)\\nVersion 1.2.4\\n" "$FAKE_M" >&2; exit 1; fi\necho "ldd (Debian GLIBC 2.36-9+deb12u4) 2.36"',
    );
    // sysctl -n NAME: proc_translated is 1 under Rosetta, 0 natively; unknown on Intel Macs.
    w(
      "sysctl",
      '[ "$1" = -n ] && shift\ncase "$1" in\n  sysctl.proc_translated) [ -n "$FAKE_TRANSLATED" ] && echo "$FAKE_TRANSLATED" && exit 0 ;;\n  hw.optional.arm64) [ -n "$FAKE_HW_ARM64" ] && echo "$FAKE_HW_ARM64" && exit 0 ;;\nesac\necho "sysctl: unknown oid \'$1\'" >&2\nexit 1',
    );
  });
  afterAll(() => fake?.cleanup());

  const machines: [string, Record<string, string>, string][] = [
    ["Linux aarch64 (glibc)", { FAKE_S: "Linux", FAKE_M: "aarch64", FAKE_LIBC: "glibc" }, "linux-arm64"],
    ["Linux arm64 (glibc)", { FAKE_S: "Linux", FAKE_M: "arm64", FAKE_LIBC: "glibc" }, "linux-arm64"],
    ["Linux x86_64 (glibc)", { FAKE_S: "Linux", FAKE_M: "x86_64", FAKE_LIBC: "glibc" }, "linux-x64"],
    ["Linux x86_64 with musl (Alpine)", { FAKE_S: "Linux", FAKE_M: "x86_64", FAKE_LIBC: "musl" }, "linux-x64-musl"],
    ["Linux aarch64 with musl", { FAKE_S: "Linux", FAKE_M: "aarch64", FAKE_LIBC: "musl" }, "linux-arm64-musl"],
    ["Darwin arm64", { FAKE_S: "Darwin", FAKE_M: "arm64", FAKE_TRANSLATED: "0", FAKE_HW_ARM64: "1" }, "darwin-arm64"],
    ["Darwin x86_64 under Rosetta", { FAKE_S: "Darwin", FAKE_M: "x86_64", FAKE_TRANSLATED: "1", FAKE_HW_ARM64: "1" }, "darwin-arm64"],
    ["Darwin x86_64 (Intel Mac)", { FAKE_S: "Darwin", FAKE_M: "x86_64", FAKE_TRANSLATED: "", FAKE_HW_ARM64: "" }, "darwin-x64"],
    ["MINGW64 (Git Bash on Windows)", { FAKE_S: "MINGW64_NT-10.0-19045", FAKE_M: "x86_64" }, "windows-x64"],
  ];
  const base0 = { FAKE_LIBC: "glibc", FAKE_TRANSLATED: "", FAKE_HW_ARM64: "" };

  for (const [what, env, target] of machines) {
    test(`${what} -> ${target}`, async () => {
      const r = await sh(["--print-target"], { ...base0, ...env, HOME: fake.path, PATH: `${fake.path}:${SYSTEM_PATH}` });
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe(`${target}\n`);
      expect(r.code).toBe(0);
    }, 30_000);
  }

  test("--dry-run names the right archive from SHA256SUMS (latest and pinned versions)", async () => {
    for (const [, env, target] of machines) {
      // xz is on the PATH here: .tar.xz wherever the release has one.
      const ext = target.startsWith("windows") ? "zip" : "tar.xz";
      for (const version of [[], ["--version", TEST_VERSION]]) {
        const r = await sh(["--dry-run", "--url", `${base}/good`, ...version], {
          ...base0,
          ...env,
          HOME: fake.path,
          PATH: `${fake.path}:${SYSTEM_PATH}`,
        });
        expect(r.stderr).toBe("");
        expect(r.stdout).toBe(`${base}/good/gostash-${TEST_VERSION}-${target}.${ext}\n`);
      }
    }
  }, 120_000);

  test("GOSTASH_UNAME and GOSTASH_LIBC override detection without touching PATH", async () => {
    const r = await sh(["--print-target"], {
      HOME: fake.path,
      GOSTASH_UNAME: join(fake.path, "uname"),
      GOSTASH_LIBC: "musl",
      FAKE_S: "Linux",
      FAKE_M: "aarch64",
    });
    expect(r.stdout).toBe("linux-arm64-musl\n");
    const r2 = await sh(["--print-target", "--target", "darwin-x64"], { HOME: fake.path });
    expect(r2.stdout).toBe("darwin-x64\n");
  }, 30_000);

  test("unsupported systems are refused with a clear message", async () => {
    for (const [s, m, msg] of [
      ["FreeBSD", "amd64", "unsupported operating system: FreeBSD"],
      ["Linux", "riscv64", "unsupported architecture: riscv64"],
      ["Linux", "armv7l", "unsupported architecture: armv7l"],
    ] as const) {
      const r = await sh(["--print-target"], { ...base0, FAKE_S: s, FAKE_M: m, HOME: fake.path, PATH: `${fake.path}:${SYSTEM_PATH}` });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(msg);
    }
  }, 30_000);

  test("without --url it downloads from GitHub over HTTPS only (curl --proto =https)", async () => {
    const log = join(fake.path, "curl.log");
    writeFileSync(join(fake.path, "curl"), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexit 22\n`);
    chmodSync(join(fake.path, "curl"), 0o755);
    try {
      const env = { ...base0, FAKE_S: "Linux", FAKE_M: "x86_64", HOME: fake.path, CI: "1", PATH: `${fake.path}:${SYSTEM_PATH}` };
      const r = await sh([], env);
      expect(r.code).not.toBe(0);
      const r2 = await sh(["--version", "v1.2.3", "--repo", "acme/gostash"], env);
      expect(r2.code).not.toBe(0);
      const lines = readFileSync(log, "utf8").trim().split("\n");
      expect(lines).toHaveLength(2);
      expect(lines[0]).toContain("--proto =https");
      expect(lines[0]).toEndWith("https://github.com/gostash/gostash/releases/latest/download/SHA256SUMS");
      expect(lines[1]).toContain("--proto =https");
      expect(lines[1]).toEndWith("https://github.com/acme/gostash/releases/download/v1.2.3/SHA256SUMS");
    } finally {
      Bun.spawnSync(["rm", "-f", join(fake.path, "curl"), log]);
    }
  }, 30_000);
});

describe("install.sh lint", () => {
  test("shellcheck passes (POSIX sh)", async () => {
    const p = Bun.spawnSync(["shellcheck", "--shell=sh", "--severity=style", INSTALL], { stdout: "pipe", stderr: "pipe" });
    expect(p.stdout.toString() + p.stderr.toString()).toBe("");
    expect(p.exitCode).toBe(0);
  }, 60_000);

  test("dash parses it (sh -n)", () => {
    const p = Bun.spawnSync(["/bin/sh", "-n", INSTALL], { stderr: "pipe" });
    expect(p.stderr.toString()).toBe("");
    expect(p.exitCode).toBe(0);
  });
});
