// The release workflow cannot run here; check that it parses as YAML (with
// Ruby's Psych, like install/formula tests use Ruby) and wires the scripts
// together the way docs/ci.md describes.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { ROOT, run } from "../helpers/env.ts";

test("release.yml: valid YAML; build -> sign-macos -> publish -> tap, re-signing before packing", async () => {
  const file = join(ROOT, ".github", "workflows", "release.yml");
  const r = await run(["ruby", "-ryaml", "-rjson", "-e", "puts JSON.generate(YAML.load_file(ARGV[0]))", file], { timeoutMs: 30_000 });
  expect(r.stderr).toBe("");
  const wf = JSON.parse(r.stdout);
  // YAML 1.1 (Psych) reads the key `on` as true; GitHub reads it as "on".
  expect((wf.on ?? wf["true"]).push.tags).toEqual(["v*"]);
  expect(Object.keys(wf.jobs)).toEqual(["build", "sign-macos", "publish", "tap"]);
  expect(wf.jobs["sign-macos"]["runs-on"]).toMatch(/^macos/);
  expect(wf.jobs["sign-macos"].needs).toBe("build");
  expect(wf.jobs.publish.needs).toBe("sign-macos");
  expect(wf.jobs.publish.permissions.contents).toBe("write");
  const runs = (job: string) => (wf.jobs[job].steps as { run?: string }[]).map((s) => s.run ?? "").join("\n");
  expect(runs("build")).toContain("scripts/release.ts");
  const sign = runs("sign-macos");
  // xz (for the .tar.xz archives) is there before packing.
  const order = ["codesign --remove-signature", "codesign --sign -", "codesign --verify", "brew install xz", "--pack-only --require-valid-signatures", "scripts/formula.ts", "install.sh"];
  const at = order.map((s) => sign.indexOf(s));
  expect(at.every((i) => i >= 0)).toBe(true);
  expect([...at].sort((a, b) => a - b)).toEqual(at);
  expect(runs("publish")).toContain("sha256sum -c SHA256SUMS");
  expect(runs("tap")).toContain("Formula/gostash.rb");
  for (const job of Object.values(wf.jobs) as { "timeout-minutes"?: number }[]) expect(job["timeout-minutes"]).toBeGreaterThan(0);
}, 30_000);
