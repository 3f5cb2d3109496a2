// Git repositories for the CI tests: a test module whose tests read
// testdata (a file, a directory listing, a nested file, a file through a
// symlink) next to packages whose tests read nothing, committed in a
// source repository that tests clone (fully or with --depth 1).
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { run } from "./env.ts";

/** git with no user or system configuration, a fixed identity and fixed dates. */
export function gitEnv(): Record<string, string> {
  return {
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_AUTHOR_NAME: "t",
    GIT_AUTHOR_EMAIL: "t@example.com",
    GIT_COMMITTER_NAME: "t",
    GIT_COMMITTER_EMAIL: "t@example.com",
    GIT_AUTHOR_DATE: "2024-01-01T00:00:00Z",
    GIT_COMMITTER_DATE: "2024-01-01T00:00:00Z",
  };
}

export async function git(args: string[], cwd: string): Promise<string> {
  const r = await run(["git", ...args], { cwd, env: gitEnv(), timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`git ${args.join(" ")} in ${cwd}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Packages of the test module and what their tests open. */
export const READERS = ["example.com/ci/reads", "example.com/ci/lists", "example.com/ci/nested/deep", "example.com/ci/link"];
export const NON_READERS = ["example.com/ci/plain", "example.com/ci/plain2"];

const readTest = (pkg: string, body: string) =>
  `package ${pkg}\n\nimport (\n\t"os"\n\t"testing"\n)\n\nfunc TestData(t *testing.T) {\n${body}\n}\n\nvar _ = os.Open\n`;

export const TEST_MODULE: Record<string, string> = {
  "go.mod": "module example.com/ci\n\ngo 1.22\n",
  "reads/reads.go": "package reads\n\n// N is here so the package has code.\nconst N = 1\n",
  "reads/reads_test.go": readTest("reads", '\tb, err := os.ReadFile("testdata/x.txt")\n\tif err != nil || len(b) == 0 {\n\t\tt.Fatal(err)\n\t}'),
  "reads/testdata/x.txt": "content one\n",
  "lists/lists_test.go": readTest("lists", '\tes, err := os.ReadDir("testdata")\n\tif err != nil || len(es) != 2 {\n\t\tt.Fatal(err, len(es))\n\t}'),
  "lists/testdata/a.txt": "a\n",
  "lists/testdata/b.txt": "b\n",
  "nested/deep/deep_test.go": readTest("deep", '\tb, err := os.ReadFile("testdata/sub/y.json")\n\tif err != nil || len(b) == 0 {\n\t\tt.Fatal(err)\n\t}'),
  "nested/deep/testdata/sub/y.json": '{"y": 1}\n',
  "link/link_test.go": readTest("link", '\tb, err := os.ReadFile("testdata/alias.txt")\n\tif err != nil || len(b) == 0 {\n\t\tt.Fatal(err)\n\t}'),
  "shared/data.txt": "shared data\n",
  "plain/plain.go": "package plain\n\n// Add adds.\nfunc Add(a, b int) int { return a + b }\n",
  "plain/plain_test.go": 'package plain\n\nimport "testing"\n\nfunc TestAdd(t *testing.T) {\n\tif Add(1, 2) != 3 {\n\t\tt.Fatal("add")\n\t}\n}\n',
  "plain2/plain2_test.go": 'package plain2\n\nimport (\n\t"strings"\n\t"testing"\n)\n\nfunc TestUpper(t *testing.T) {\n\tif strings.ToUpper("a") != "A" {\n\t\tt.Fatal("upper")\n\t}\n}\n',
};

/** Writes the test module (plus extra files) into dir, with link/testdata/alias.txt -> ../../shared/data.txt, and commits it. */
export async function createTestRepo(dir: string, extra: Record<string, string> = {}): Promise<void> {
  for (const [name, text] of Object.entries({ ...TEST_MODULE, ...extra })) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  mkdirSync(join(dir, "link", "testdata"), { recursive: true });
  symlinkSync("../../shared/data.txt", join(dir, "link", "testdata", "alias.txt"));
  await git(["init", "-q", "-b", "main"], dir);
  await git(["add", "-A"], dir);
  await git(["commit", "-q", "-m", "test module"], dir);
}

/** Commits new content for one file of the source repository. */
export async function commitChange(dir: string, file: string, text: string): Promise<void> {
  writeFileSync(join(dir, file), text);
  await git(["commit", "-q", "-am", `change ${file}`], dir);
}

/** `go test` lines: package -> "cached" or "ran". */
export function testOutcomes(stdout: string): Map<string, "cached" | "ran"> {
  const out = new Map<string, "cached" | "ran">();
  for (const m of stdout.matchAll(/^ok\s+(\S+)\s+(\(cached\)|[\d.]+s)/gm)) out.set(m[1]!, m[2] === "(cached)" ? "cached" : "ran");
  return out;
}
