// The --private pattern matcher (src/modproxy/globs.ts) against the go
// command's semantics: the prefix rules of module.MatchPrefixPatterns as
// `go help module-private` describes them (table below), and the glob syntax
// checked differentially against Go's own path.Match, run by the real go
// command on random patterns and names.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { compileGlob, matchingPattern, matchPrefixPatterns, pathMatch } from "../../src/modproxy/globs.ts";
import { run, tempDir } from "../helpers/env.ts";

describe("matchPrefixPatterns", () => {
  const cases: [string, string, boolean][] = [
    // A glob matches whole leading path elements.
    ["rsc.io", "rsc.io/quote", true],
    ["rsc.io", "rsc.io/quote/v3", true],
    ["rsc.io", "rsc.io", true],
    ["rsc", "rsc.io/quote", false],
    ["rsc.io/quo", "rsc.io/quote", false],
    ["rsc.io", "rsc.io.evil.com/quote", false],
    ["rsc*", "rsc.io/quote", true],
    ["*.io", "rsc.io/quote", true],
    // A trailing slash is ignored.
    ["rsc.io/", "rsc.io/quote", true],
    ["*/quote/", "rsc.io/quote/v3", true],
    // N slashes: matched against the first N+1 elements; "*" never crosses "/".
    ["*/quote", "rsc.io/quote", true],
    ["*/quote", "rsc.io/quote/v3", true],
    ["*/quo", "rsc.io/quote", false],
    ["*/quo??", "rsc.io/quote", true],
    ["*/quo*", "rsc.io/quote", true],
    ["*quo*", "rsc.io/quote", false],
    ["*/v3", "rsc.io/quote/v3", false],
    ["*/*/v3", "rsc.io/quote/v3", true],
    ["*/*/*", "rsc.io/quote/v3", true],
    ["*/*/*/", "rsc.io/quote/v3", true],
    // More elements than the path has: no match.
    ["*/*/*", "rsc.io/quote", false],
    ["*/quote/*", "rsc.io/quote", false],
    // Lists: empty entries skipped, any entry may match.
    ["*/*/*,,", "rsc.io/quote", false],
    ["*/*/*,,*/quote", "rsc.io/quote", true],
    [",,*/quote", "rsc.io/quote", true],
    ["example.com,corp.example.com/team", "corp.example.com/team/lib.git", true],
    ["example.com,corp.example.com/team", "corp.example.com/other/lib", false],
    ["", "rsc.io/quote", false],
    [",", "rsc.io/quote", false],
    // Spaces are not trimmed (the go command does not trim them).
    ["a.io, rsc.io", "rsc.io/quote", false],
    // Classes and escapes.
    ["git.[a-c]orp.com", "git.corp.com/x", true],
    ["git.[^c]orp.com", "git.corp.com/x", false],
    ["git.[^c]orp.com", "git.dorp.com/x", true],
    ["git\\.corp.com", "git.corp.com/x", true],
    ["git\\.corp.com", "gitXcorp.com/x", false],
    // A malformed glob never matches and does not spoil the others.
    ["[", "rsc.io/quote", false],
    ["rsc.io\\", "rsc.io/quote", false],
    ["[]", "]/quote", false],
    ["[a-],rsc.io", "rsc.io/quote", true],
  ];
  for (const [globs, target, want] of cases) {
    test(`${JSON.stringify(globs)} ~ ${target} = ${want}`, () => {
      expect(matchPrefixPatterns(globs, target)).toBe(want);
    });
  }

  test("matchingPattern names the glob that matched, without its trailing slash", () => {
    expect(matchingPattern("a.io,corp.example.com/,b.io", "corp.example.com/x")).toBe("corp.example.com");
    expect(matchingPattern("a.io,b.io", "corp.example.com/x")).toBeNull();
  });

  test("malformed globs compile to null", () => {
    for (const g of ["[", "[a", "[]", "[^]", "[a-", "[a-]", "[-a]", "\\", "a[\\", "[z-"]) expect(compileGlob(g), g).toBeNull();
    for (const g of ["]a]", "[\\]]", "[\\-]", "[z-a]x", "*", "\\*"]) expect(compileGlob(g), g).not.toBeNull();
  });
});

describe("pathMatch against Go's path.Match", () => {
  test("random patterns and names agree with the go command's path.Match", async () => {
    const pattern = fc.string({ unit: fc.constantFrom("a", "b", "c", "/", ".", "*", "?", "[", "]", "^", "-", "\\"), maxLength: 10 });
    const name = fc.string({ unit: fc.constantFrom("a", "b", "c", "/", ".", "]", "^", "-", "*"), maxLength: 8 });
    const seed = Number(process.env.GOSTASH_FUZZ_SEED ?? 20260522);
    const pairs = fc.sample(fc.tuple(pattern, name), { seed, numRuns: Number(process.env.GOSTASH_FUZZ_RUNS ?? 3000) });
    // Hand-picked corner cases as well.
    pairs.push(["[a-c]", "b"], ["[^a]", "/"], ["a*", "ab/c"], ["*[/]b", "a/b"], ["[z-a]", "m"], ["[^z-a]", "m"], ["[^z-a]", "/"], ["\\[", "["], ["a?", "a/"]);
    const t = tempDir("gostash-globs-");
    try {
      writeFileSync(
        join(t.path, "main.go"),
        // Reads "pattern\tname" lines, prints whether path.Match matched without error.
        'package main\n\nimport (\n\t"bufio"\n\t"fmt"\n\t"os"\n\t"path"\n\t"strings"\n)\n\nfunc main() {\n\tsc := bufio.NewScanner(os.Stdin)\n\tw := bufio.NewWriter(os.Stdout)\n\tdefer w.Flush()\n\tfor sc.Scan() {\n\t\tp, n, _ := strings.Cut(sc.Text(), "\\t")\n\t\tok, err := path.Match(p, n)\n\t\tfmt.Fprintln(w, ok && err == nil)\n\t}\n}\n',
      );
      const r = await run(["go", "run", "main.go"], {
        cwd: t.path,
        env: { GOENV: "off", GOTOOLCHAIN: "local", GOFLAGS: "", GOWORK: "off", GOPROXY: "off", CGO_ENABLED: "0", GOCACHEPROG: "" },
        stdin: pairs.map(([p, n]) => `${p}\t${n}\n`).join(""),
        timeoutMs: 240_000,
      });
      if (r.code !== 0) throw new Error(`go run failed:\n${r.stderr}`);
      const want = r.stdout.trim().split("\n");
      expect(want.length).toBe(pairs.length);
      const diffs = pairs.filter(([p, n], i) => pathMatch(p, n) !== (want[i] === "true")).map(([p, n]) => `${JSON.stringify(p)} ~ ${JSON.stringify(n)}`);
      expect(diffs).toEqual([]);
      // The sample must exercise both answers, or the comparison proves little.
      expect(want.filter((w) => w === "true").length).toBeGreaterThan(20);
    } finally {
      t.cleanup();
    }
  }, 300_000);
});
