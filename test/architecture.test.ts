// The layering rules of docs/architecture.md, checked on src/ by
// scripts/architecture.ts (which a reader can run alone), and the checker's
// own tokenising checked on samples, so a rule cannot pass by accident.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { check, findCycles, functionsOf, importsOf, MAX_FILE_LINES, MAX_FUNCTION_LINES, tokenize } from "../scripts/architecture.ts";
import { ROOT } from "./helpers/env.ts";

describe("src/ keeps its layers", () => {
  test("no import cycles, no forbidden imports, one S3 module, no file or function too long", () => {
    const r = check(join(ROOT, "src"));
    expect(r.violations).toEqual([]);
    expect(r.files.length).toBeGreaterThan(50);
    expect(Math.max(...r.files.map((f) => f.lines))).toBeLessThanOrEqual(MAX_FILE_LINES);
    expect(Math.max(...r.functions.map((f) => f.lines))).toBeLessThanOrEqual(MAX_FUNCTION_LINES);
  });
});

describe("the checker", () => {
  test("finds imports of every form, and nothing in strings or comments", () => {
    const src = `
      import { a } from "./a.ts";
      import type { B } from "../b.ts";
      export { c } from "./c.ts";
      import "./side.ts";
      const d = await import("./d.ts");
      // import { x } from "./comment.ts";
      const s = 'import("./string.ts")';
      const t = \`from "./template.ts"\`;
    `;
    expect(importsOf(tokenize(src))).toEqual(["./a.ts", "../b.ts", "./c.ts", "./side.ts", "./d.ts"]);
  });

  test("measures function bodies, not blocks, object literals, type literals, templates or regexes", () => {
    const src = [
      "function one(a: number): { x: number; y: string } {", // 1
      "  if (a) {", //                                          2
      "    const o = { k: `${a}}}` };", //                      3
      "  }", //                                                 4
      "  const re = /[{]+/g;", //                               5
      "  const f = (b: number) => {", //                        6
      "    return b;", //                                       7
      "  };", //                                                8
      "  return { x: 1, y: '}' };", //                          9
      "}", //                                                   10
      "class K {", //                                           11
      "  m(): Promise<{ a: 1 }> {", //                          12
      "    for (;;) {}", //                                     13
      "  }", //                                                 14
      "}", //                                                   15
    ].join("\n");
    const fns = functionsOf("x.ts", tokenize(src)).map((f) => [f.name, f.line, f.lines]);
    expect(fns).toEqual([
      ["(anonymous)", 6, 3],
      ["one", 1, 10],
      ["m", 12, 3],
    ]);
  });

  test("finds cycles, including through dynamic imports, and only real ones", () => {
    const g = new Map([
      ["a.ts", ["b.ts"]],
      ["b.ts", ["c.ts"]],
      ["c.ts", ["a.ts"]],
      ["d.ts", ["a.ts"]],
      ["e.ts", ["e.ts"]],
    ]);
    expect(findCycles(g)).toEqual([["a.ts", "b.ts", "c.ts"], ["e.ts"]]);
  });
});
