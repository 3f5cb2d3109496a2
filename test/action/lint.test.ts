// actionlint (pinned, installed by scripts/tools/actionlint.sh) on the
// repository's workflows, whose `uses: ./` makes it check the inputs and
// entry points of action.yml too, and on the GitHub Actions workflows
// docs/ci.md tells users to paste (run: scripts through shellcheck).
import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, run, tempDir, TOOLS } from "../helpers/env.ts";

const ACTIONLINT = join(TOOLS, "bin", "actionlint");
const tmp = tempDir("gostash-actionlint-");
afterAll(() => tmp.cleanup());

function actionlint(cwd: string, files: string[] = []) {
  if (!existsSync(ACTIONLINT)) throw new Error(`${ACTIONLINT} is missing: run sh scripts/tools/actionlint.sh`);
  return run([ACTIONLINT, "-no-color", ...files], { cwd, timeoutMs: 120_000 });
}

/** A throwaway project with this action at its root and one workflow. */
function project(name: string, workflow: string): string {
  const dir = join(tmp.path, name);
  mkdirSync(join(dir, ".github", "workflows"), { recursive: true });
  cpSync(join(ROOT, "action.yml"), join(dir, "action.yml"));
  cpSync(join(ROOT, "action"), join(dir, "action"), { recursive: true });
  writeFileSync(join(dir, ".github", "workflows", "w.yml"), workflow);
  Bun.spawnSync(["git", "init", "-q"], { cwd: dir });
  return dir;
}

describe("actionlint", () => {
  test("the repository's workflows, and action.yml through `uses: ./`, have no findings", async () => {
    const r = await actionlint(ROOT);
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  test("it does check the action's inputs: a workflow giving an input action.yml lacks is reported", async () => {
    const wf = readFileSync(join(ROOT, ".github", "workflows", "action-selftest.yml"), "utf8").replace("          modproxy: true\n", "          modproxy: true\n          buckett: typo\n");
    const r = await actionlint(project("typo", wf));
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('input "buckett" is not defined in action "gostash"');
  });

  test("the GitHub Actions workflows in docs/ci.md have no findings", async () => {
    const md = readFileSync(join(ROOT, "docs", "ci.md"), "utf8");
    const workflows = [...md.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((y) => /^jobs:/m.test(y) && /runs-on:/.test(y));
    expect(workflows.length).toBeGreaterThanOrEqual(2);
    const dir = join(tmp.path, "docs");
    mkdirSync(join(dir, ".github", "workflows"), { recursive: true });
    Bun.spawnSync(["git", "init", "-q"], { cwd: dir });
    const files = workflows.map((y, i) => {
      const f = join(".github", "workflows", `doc${i}.yml`);
      writeFileSync(join(dir, f), y);
      return f;
    });
    const r = await actionlint(dir, files);
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);
  });
});
