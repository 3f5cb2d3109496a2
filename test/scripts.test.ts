// The scripts a new user runs first (issue #15, item 11): an expected
// failure is one line on stderr and exit status 1, never a stack trace
// (which reads as a crash, or as "Go is missing").
import { afterAll, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, run, tempDir } from "./helpers/env.ts";
import { FailureLog } from "../scripts/test-failures.ts";

const tmp = tempDir("gostash-scripts-");
afterAll(() => tmp.cleanup());

async function script(args: string[]): Promise<{ code: number; lines: string[] }> {
  const r = await run([process.execPath, ...args], { cwd: ROOT, timeoutMs: 120_000 });
  return { code: r.code, lines: r.stderr.trimEnd().split("\n") };
}

function expectOneLine(r: { code: number; lines: string[] }, text: string): void {
  expect(r.lines).toEqual([text]);
  expect(r.code).toBe(1);
}

test("quickstart with a directory that is not there, or not a directory", async () => {
  expectOneLine(
    await script(["scripts/quickstart.ts", "/nonexistent"]),
    "quickstart: /nonexistent does not exist (give a Go module directory, or nothing for the demo module)",
  );
  const file = join(tmp.path, "a-file");
  writeFileSync(file, "");
  expectOneLine(await script(["scripts/quickstart.ts", file]), `quickstart: ${file} is not a directory`);
}, 240_000);

test("formula without SHA256SUMS, with a missing archive, with a bad option", async () => {
  expectOneLine(
    await script(["scripts/formula.ts", `--dir=${tmp.path}`]),
    `formula: ${join(tmp.path, "SHA256SUMS")} is missing; run scripts/release.ts first`,
  );
  const one = "gostash-1.0.0-darwin-arm64.tar.gz";
  writeFileSync(join(tmp.path, one), "not really an archive");
  const sha = new Bun.CryptoHasher("sha256").update("not really an archive").digest("hex");
  writeFileSync(join(tmp.path, "SHA256SUMS"), `${sha}  ${one}\n`);
  expectOneLine(await script(["scripts/formula.ts", `--dir=${tmp.path}`]), `formula: ${join(tmp.path, "gostash-1.0.0-darwin-x64.tar.gz")} is missing`);
  expectOneLine(await script(["scripts/formula.ts", "--bogus"]), "formula: Unknown option '--bogus'");
}, 120_000);

test("release with an unknown target", async () => {
  const r = await script(["scripts/release.ts", "--pack-only", "--targets=solaris-sparc", `--out=${join(tmp.path, "out")}`, `--stage=${join(tmp.path, "stage")}`]);
  expect(r.lines).toHaveLength(1);
  expect(r.lines[0]).toStartWith("release: unknown target solaris-sparc; known: linux-x64,");
  expect(r.code).toBe(1);
}, 120_000);

test("the test runner prints each failed test's output again at the end, from bun's real report split anywhere", async () => {
  // With many files bun ends its report with the failed tests' names again ("1 tests failed:"): not new failures.
  const others = Array.from({ length: 25 }, (_, i) => {
    const f = join(tmp.path, `passes-${i}.fixture.ts`);
    writeFileSync(f, `import { test } from "bun:test";\ntest("passes ${i}", () => {});\n`);
    return f;
  });
  const r = await run([process.execPath, "test", "./test/fixtures/bun-report/fails.fixture.ts", ...others], { cwd: ROOT, timeoutMs: 60_000 });
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/^1 tests? failed:$/m);
  for (const chunk of [1, 7, 4096]) {
    const log = new FailureLog();
    for (let i = 0; i < r.stderr.length; i += chunk) log.push(r.stderr.slice(i, i + chunk));
    expect(log.failures).toHaveLength(1); // not again from bun's closing list of failed tests
    const [f] = log.failures;
    expect(f!.file).toEndWith("fails.fixture.ts");
    expect(f!.title).toStartWith("(fail) fails with output");
    const text = f!.output.join("\n");
    expect(text).toContain("figures: reported 7.1s, measured 2.0s");
    expect(text).toContain("Received: 7.1");
    expect(text).not.toContain("noise");
    expect(log.report()).toContain("=== 1 failed;");
  }
  expect(new FailureLog().report()).toBe("");
}, 120_000);

test("temp dirs the tests leave behind, or that are written to again after their cleanup, are gone once the run ends (test/preload.ts)", async () => {
  const out = join(tmp.path, "leaves.txt");
  const r = await run([process.execPath, "test", "./test/fixtures/temp-dirs/leaves.fixture.ts"], { cwd: ROOT, env: { LEAVES_OUT: out }, timeoutMs: 60_000 });
  expect(r.code).toBe(0);
  const left = readFileSync(out, "utf8").trim().split("\n");
  expect(left).toHaveLength(2);
  for (const dir of left) expect(existsSync(dir)).toBe(false);
}, 120_000);
