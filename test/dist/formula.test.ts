// The Homebrew formula generated from the real release: valid Ruby, the
// right URL and sha256 for each OS/architecture (evaluated under a stub of
// Homebrew's DSL), an install that ships the binary and completions, and a
// `test do` block that passes against the real linux-x64 binary.
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateFormula, readSums } from "../../scripts/formula.ts";
import type { Release } from "../../scripts/release.ts";
import { ROOT, run, tempDir } from "../helpers/env.ts";
import { BUILD_TIMEOUT_MS, processTempDir, TEST_VERSION, testRelease } from "./fixture.ts";

let rel: Release;
let formulaPath = "";
const work = { path: processTempDir("gostash-formula-") };

beforeAll(async () => {
  rel = await testRelease();
  formulaPath = join(work.path, "gostash.rb");
  writeFileSync(formulaPath, await generateFormula({ dir: rel.outDir, repo: "acme/gostash" }));
}, BUILD_TIMEOUT_MS);

// A stand-in for Homebrew's Formula DSL: on_macos/on_linux/on_arm/on_intel
// run their block only for the chosen platform; url/sha256 are recorded;
// install and the test block run with bin pointing at a given directory.
const HARNESS = String.raw`
require "json"
require "pathname"
$os, $cpu, $bindir = ARGV[1], ARGV[2], ARGV[3]
$calls = []
class FakeBin < Pathname
  def install(*files) = $calls << ["bin.install", *files]
end
class Formula
  class << self
    def rec = (@rec ||= {})
    %w[desc homepage version url sha256 license].each { |m| define_method(m) { |v| rec[m] = v } }
    def on_macos = ($os == "macos" ? yield : nil)
    def on_linux = ($os == "linux" ? yield : nil)
    def on_arm = ($cpu == "arm" ? yield : nil)
    def on_intel = ($cpu == "intel" ? yield : nil)
    def test(&block) = (rec["test_block"] = block)
  end
  def version = self.class.rec["version"]
  def bin = FakeBin.new($bindir)
  def opt_bin = bin
  def generate_completions_from_executable(*args, **kw) = $calls << ["completions", args.map(&:to_s), kw[:shells].map(&:to_s)]
  def shell_output(cmd)
    out = IO.popen(cmd, &:read)
    raise "#{cmd} failed" unless $?.success?
    out
  end
  def assert_match(want, got) = (got.include?(want) or raise "#{got.inspect} does not contain #{want.inspect}")
end
load ARGV[0]
f = Gostash.new
f.install
f.caveats
test_ok = ($bindir != "" ? (f.instance_exec(&Gostash.rec["test_block"]); true) : nil)
r = Gostash.rec.reject { |k, _| k == "test_block" }
puts JSON.generate(r.merge("calls" => $calls, "test_ok" => test_ok))
`;

async function evalFormula(os: string, cpu: string, bindir = ""): Promise<Record<string, any>> {
  const harness = join(work.path, "harness.rb");
  writeFileSync(harness, HARNESS);
  const r = await run(["ruby", harness, formulaPath, os, cpu, bindir], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`ruby harness failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe("Homebrew formula", () => {
  test("ruby -c accepts it", async () => {
    const r = await run(["ruby", "-c", formulaPath], { timeoutMs: 60_000 });
    expect(r.stdout.trim()).toBe("Syntax OK");
    expect(r.code).toBe(0);
  }, 60_000);

  const platforms = [
    ["macos", "arm", "darwin-arm64"],
    ["macos", "intel", "darwin-x64"],
    ["linux", "arm", "linux-arm64"],
    ["linux", "intel", "linux-x64"],
  ] as const;
  for (const [os, cpu, target] of platforms) {
    test(`on_${os} on_${cpu}: URL and sha256 of the ${target} archive`, async () => {
      const sums = readSums(readFileSync(join(rel.outDir, "SHA256SUMS"), "utf8"));
      const file = `gostash-${TEST_VERSION}-${target}.tar.gz`;
      const f = await evalFormula(os, cpu);
      expect(f.url).toBe(`https://github.com/acme/gostash/releases/download/v${TEST_VERSION}/${file}`);
      expect(f.sha256).toBe(sums.get(file)!);
      expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(f.version).toBe(TEST_VERSION);
      expect(f.homepage).toBe("https://github.com/acme/gostash");
      expect(f.desc.length).toBeLessThanOrEqual(80); // brew audit's limit
      expect(f.calls).toEqual([
        ["bin.install", "gostash"],
        ["completions", [expect.stringMatching(/gostash$/), "completion"], ["bash", "zsh", "fish"]],
      ]);
    }, 60_000);
  }

  test("the formula's test block passes against the real linux-x64 binary", async () => {
    const linux = rel.artifacts.find((a) => a.target.name === "linux-x64")!;
    const f = await evalFormula("linux", "intel", join(linux.binary, ".."));
    expect(f.test_ok).toBe(true);
  }, 60_000);

  test("an archive that does not match SHA256SUMS stops the generator", async () => {
    const dir = tempDir();
    try {
      for (const a of rel.artifacts) symlinkSync(join(rel.outDir, a.file), join(dir.path, a.file));
      const sums = readFileSync(join(rel.outDir, "SHA256SUMS"), "utf8");
      const target = `gostash-${TEST_VERSION}-darwin-arm64.tar.gz`;
      writeFileSync(
        join(dir.path, "SHA256SUMS"),
        sums.replace(new RegExp(`^[0-9a-f]{64}(?=  ${target.replace(/\./g, "\\.")})`, "m"), "0".repeat(64)),
      );
      await expect(generateFormula({ dir: dir.path })).rejects.toThrow(/darwin-arm64\.tar\.gz has sha256 [0-9a-f]{64} but SHA256SUMS says 0{64}/);
    } finally {
      dir.cleanup();
    }
  }, 60_000);

  test("the command line writes gostash.rb next to the archives, or where told", async () => {
    const out = join(work.path, "Formula", "gostash.rb");
    const r = await run([process.execPath, join(ROOT, "scripts", "formula.ts"), `--dir=${rel.outDir}`, `--out=${out}`, "--base-url=https://mirror.example/g/"], {
      timeoutMs: 60_000,
    });
    expect(r.code).toBe(0);
    const text = readFileSync(out, "utf8");
    expect(text).toContain(`url "https://mirror.example/g/gostash-${TEST_VERSION}-linux-x64.tar.gz"`);
    expect(text).toContain(`version "${TEST_VERSION}"`);
  }, 60_000);
});
