// `gostash completion bash|zsh|fish` from the release binary: the scripts
// parse in their shells and complete subcommands, flags and values.
import { beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "../helpers/env.ts";
import { BUILD_TIMEOUT_MS, processTempDir, testRelease } from "./fixture.ts";

let bin = "";
const scripts: Record<string, string> = {};
const work = { path: processTempDir("gostash-completion-") };

beforeAll(async () => {
  const rel = await testRelease();
  bin = rel.artifacts.find((a) => a.target.name === "linux-x64")!.binary;
  for (const shell of ["bash", "zsh", "fish"]) {
    const r = await run([bin, "completion", shell], { timeoutMs: 30_000, cwd: work.path });
    if (r.code !== 0) throw new Error(`completion ${shell}: exit ${r.code}: ${r.stderr}`);
    scripts[shell] = r.stdout;
    writeFileSync(join(work.path, `gostash.${shell}`), r.stdout);
  }
}, BUILD_TIMEOUT_MS);

describe("shell completion", () => {
  test("each script names every subcommand and the common flags", () => {
    for (const [shell, text] of Object.entries(scripts)) {
      for (const word of ["serve", "connect", "version", "completion", "cache-dir", "verbose"]) {
        expect({ shell, has: text.includes(word) }).toEqual({ shell, has: true });
      }
    }
  });

  test("an unknown shell is a usage error", async () => {
    const r = await run([bin, "completion", "tcsh"], { timeoutMs: 30_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("use bash, zsh or fish");
    expect(r.stdout).toBe("");
  }, 30_000);

  test("bash: parses, and completes subcommands, flags and shell names", async () => {
    const file = join(work.path, "gostash.bash");
    const probe = (words: string[]) =>
      `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _gostash; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const n = await run(["bash", "-n", file], { timeoutMs: 30_000 });
    expect(n.stderr).toBe("");
    const sub = await run(["bash", "-c", probe(["gostash", "con"])], { timeoutMs: 30_000 });
    expect(sub.stdout).toBe("connect\n");
    const flag = await run(["bash", "-c", probe(["gostash", "serve", "--cache-d"])], { timeoutMs: 30_000 });
    expect(flag.stdout).toBe("--cache-dir=\n");
    const shells = await run(["bash", "-c", probe(["gostash", "completion", ""])], { timeoutMs: 30_000 });
    expect(shells.stdout.split("\n").filter(Boolean).sort()).toEqual(["bash", "fish", "zsh"]);
  }, 60_000);

  test("zsh: parses (zsh -n)", async () => {
    const r = await run(["zsh", "-n", join(work.path, "gostash.zsh")], { timeoutMs: 30_000 });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(scripts.zsh!.startsWith("#compdef gostash\n")).toBe(true);
  }, 30_000);

  test("fish: parses and completes", async () => {
    const file = join(work.path, "gostash.fish");
    const n = await run(["fish", "-n", file], { timeoutMs: 30_000 });
    expect(n.stderr).toBe("");
    const r = await run(["fish", "--no-config", "-c", `source ${file}; complete -C 'gostash serve --ht'; complete -C 'gostash completion '`], {
      timeoutMs: 30_000,
    });
    expect(r.stdout).toMatch(/^--http\t/m);
    expect(r.stdout).toMatch(/^zsh$/m);
  }, 30_000);
});
