// The module path glob matcher (src/modproxy/globs.ts) of --private, the
// rules file and mod import, against the go command's semantics: the prefix
// rules of module.MatchPrefixPatterns as `go help module-private` describes
// them (tables below), the globs refused with a PatternError, and the glob
// syntax checked differentially against Go's own path.Match, run by the real
// go command on random patterns and names.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { pathMatch, PatternError, PrefixPatterns } from "../../src/modproxy/module/globs.ts";
import { run, tempDir } from "../helpers/env.ts";

describe("PrefixPatterns (module.MatchPrefixPatterns)", () => {
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
    ["example.com/a", "example.com", false],
    ["example.com/a", "example.com/ab", false],
    ["*.example.com", "corp.example.com/x", true],
    ["*.example.com", "example.com/x", false],
    ["*", "anything.example/x/y", true],
    // A trailing slash is ignored.
    ["rsc.io/", "rsc.io/quote", true],
    ["*/quote/", "rsc.io/quote/v3", true],
    // N slashes: matched against the first N+1 elements; "*" never crosses "/".
    ["*/quote", "rsc.io/quote", true],
    ["*/quote", "rsc.io/quote/v3", true],
    ["*/quo", "rsc.io/quote", false],
    ["*/quo??", "rsc.io/quote", true],
    ["*/quo*", "rsc.io/quote", true],
    ["rsc.io/q?ote", "rsc.io/quote", true],
    ["*quo*", "rsc.io/quote", false],
    ["*/v3", "rsc.io/quote/v3", false],
    ["*/*/v3", "rsc.io/quote/v3", true],
    ["*/*/*", "rsc.io/quote/v3", true],
    ["*/*/*/", "rsc.io/quote/v3", true],
    // More elements than the path has: no match.
    ["*/*/*", "rsc.io/quote", false],
    ["*/quote/*", "rsc.io/quote", false],
    ["*/quote", "rsc.io", false],
    // Lists: empty entries skipped, any entry may match.
    ["*/*/*,,", "rsc.io/quote", false],
    ["*/*/*,,*/quote", "rsc.io/quote", true],
    [",,*/quote", "rsc.io/quote", true],
    ["example.com,corp.example.com/team", "corp.example.com/team/lib.git", true],
    ["example.com,corp.example.com/team", "corp.example.com/other/lib", false],
    ["", "rsc.io/quote", false],
    [",", "rsc.io/quote", false],
    // Spaces are not trimmed (the go command does not trim them; the rules file does, rules.test.ts).
    ["a.io, rsc.io", "rsc.io/quote", false],
    // Classes and escapes.
    ["git.[a-c]orp.com", "git.corp.com/x", true],
    ["git.[^c]orp.com", "git.corp.com/x", false],
    ["git.[^c]orp.com", "git.dorp.com/x", true],
    ["[qr]sc.io", "rsc.io/x", true],
    ["[a-c]sc.io", "rsc.io/x", false],
    ["git\\.corp.com", "git.corp.com/x", true],
    ["git\\.corp.com", "gitXcorp.com/x", false],
    ["r\\sc.io", "rsc.io/x", true],
  ];
  for (const [globs, target, want] of cases) {
    test(`${JSON.stringify(globs)} ~ ${target} = ${want}`, () => {
      expect(new PrefixPatterns(globs).matches(target)).toBe(want);
    });
  }

  test("match names the glob that matched, without its trailing slash; empty lists are empty", () => {
    expect(new PrefixPatterns("a.io,corp.example.com/,b.io").match("corp.example.com/x")).toBe("corp.example.com");
    expect(new PrefixPatterns("a.io,b.io").match("corp.example.com/x")).toBeNull();
    expect(new PrefixPatterns("a.io,b.io").source).toBe("a.io,b.io");
    expect(new PrefixPatterns(",,").empty).toBe(true);
    expect(new PrefixPatterns("a.io").empty).toBe(false);
  });

  test("globs path.Match rejects, and backwards ranges, are PatternErrors naming the glob; the rest compile", () => {
    for (const g of ["[", "[a", "[]", "[^]", "[a-", "[a-]", "[-a]", "[-]", "\\", "a\\", "a[", "a[]", "a[\\", "[z-", "[z-a]", "[z-a]x"]) {
      expect(() => new PrefixPatterns(g), g).toThrow(PatternError);
    }
    for (const g of ["]a]", "[\\]]", "[\\-]", "*", "\\*"]) expect(() => new PrefixPatterns(g), g).not.toThrow();
    // One bad glob refuses the whole list (a list that matches less than it says would leak private paths).
    expect(() => new PrefixPatterns("[a-],rsc.io")).toThrow('bad glob "[a-]": bad character class');
    expect(() => new PrefixPatterns("rsc.io,x.io/[")).toThrow('bad glob "x.io/[": unterminated [');
    expect(() => new PrefixPatterns("rsc.io\\")).toThrow('bad glob "rsc.io\\\\": trailing backslash');
    expect(() => new PrefixPatterns("[z-a]")).toThrow('bad glob "[z-a]": range z-a is backwards');
    // path.Match itself: a backwards range matches nothing, a malformed glob nothing at all.
    expect(pathMatch("[z-a]", "m")).toBe(false);
    expect(pathMatch("[^z-a]", "m")).toBe(true);
    expect(pathMatch("[", "[")).toBe(false);
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
