#!/usr/bin/env bun
// Checks the layering rules of docs/architecture.md on src/ and prints what
// breaks them (exit 1), or a one-line summary (exit 0):
//
//   npx bun scripts/architecture.ts            the rules
//   npx bun scripts/architecture.ts --report   also the longest files and functions
//
// Rules:
//   1. no import cycles in src/ (static, type-only and dynamic imports alike);
//   2. the layer rules below (who may import whom);
//   3. exactly one module builds and sends S3 requests (src/s3/client.ts):
//      the AWS SDK is imported only in src/s3/, and "x-amz-" headers appear
//      only in src/s3/client.ts;
//   4. no file in src/ over MAX_FILE_LINES lines;
//   5. no function over MAX_FUNCTION_LINES lines, counted from its opening
//      brace to its closing one, nested functions included (as eslint's
//      max-lines-per-function does).
//
// Sources are tokenised with TypeScript's own scanner, so strings, template
// literals, regular expressions and comments never look like code.
// test/architecture.test.ts runs the same checks in the suite.

import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve, dirname } from "node:path";
import { createScanner, SyntaxKind as K } from "typescript/unstable/ast";

export const MAX_FILE_LINES = 400;
export const MAX_FUNCTION_LINES = 120;

/** Layer -> layers it must not import (paths relative to src/, as folder prefixes). */
export const FORBIDDEN: Record<string, string[]> = {
  "cacheprog/": ["store/", "buildcache/", "s3/", "daemon/", "commands/", "config/", "modproxy/", "http/"],
  "store/": ["cacheprog/", "buildcache/", "daemon/", "commands/", "modproxy/", "http/"],
  "s3/": ["cacheprog/", "store/", "buildcache/", "daemon/", "commands/", "modproxy/", "http/"],
  "buildcache/": ["daemon/", "commands/", "modproxy/", "http/"],
  "daemon/": ["store/", "buildcache/", "s3/", "commands/", "modproxy/"],
  "modproxy/": ["cacheprog/", "store/", "buildcache/", "daemon/", "commands/"],
  "http/": ["cacheprog/", "store/", "buildcache/", "daemon/", "commands/", "revproxy/"],
  "revproxy/": ["cacheprog/", "store/", "buildcache/", "daemon/", "commands/", "modproxy/"],
  "util/": ["cacheprog/", "store/", "buildcache/", "s3/", "daemon/", "commands/", "modproxy/", "http/", "config/"],
  "config/": ["cacheprog/", "store/", "buildcache/", "s3/", "commands/", "http/"],
  "ci/": ["cacheprog/", "store/", "s3/", "daemon/", "commands/", "modproxy/"],
};

export interface SourceFile {
  /** Relative to src/, with forward slashes. */
  path: string;
  text: string;
}

export interface FunctionSpan {
  file: string;
  line: number;
  lines: number;
  name: string;
}

export function readSources(srcDir: string): SourceFile[] {
  const out: SourceFile[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".ts")) out.push({ path: relative(srcDir, p).split("\\").join("/"), text: readFileSync(p, "utf8") });
    }
  };
  walk(srcDir);
  return out;
}

interface Token {
  kind: number;
  text: string;
  line: number;
}

/** Tokens of a TypeScript source, with template literals and regular expressions rescanned. */
export function tokenize(text: string): Token[] {
  const s = createScanner(true, 0, text);
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) lineStarts.push(i + 1);
  const lineOf = (pos: number) => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  const tokens: Token[] = [];
  // What each open brace belongs to: a template substitution or code.
  const braces: ("template" | "code")[] = [];
  for (let kind = s.scan(); kind !== K.EndOfFile; kind = s.scan()) {
    if (kind === K.CloseBraceToken && braces.pop() === "template") kind = s.reScanTemplateToken(false);
    else if ((kind === K.SlashToken || kind === K.SlashEqualsToken) && startsExpression(tokens.at(-1))) kind = s.reScanSlashToken();
    if (kind === K.OpenBraceToken) braces.push("code");
    if (kind === K.TemplateHead || kind === K.TemplateMiddle) braces.push("template");
    tokens.push({ kind, text: s.getTokenText(), line: lineOf(s.getTokenStart()) });
  }
  return tokens;
}

/** May a `/` after this token start a regular expression? */
function startsExpression(prev: Token | undefined): boolean {
  if (!prev) return true;
  if (prev.kind === K.Identifier || prev.kind === K.CloseParenToken || prev.kind === K.CloseBracketToken || prev.kind === K.CloseBraceToken) return false;
  if (prev.kind === K.NumericLiteral || prev.kind === K.StringLiteral || prev.kind === K.NoSubstitutionTemplateLiteral || prev.kind === K.TemplateTail) return false;
  if (prev.kind === K.ThisKeyword || prev.kind === K.SuperKeyword || prev.kind === K.TrueKeyword || prev.kind === K.FalseKeyword || prev.kind === K.NullKeyword) return false;
  return true;
}

/** Module specifiers a file imports: static, type-only, re-exports and dynamic import("..."). */
export function importsOf(tokens: Token[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const next = tokens[i + 1];
    if (t.kind === K.FromKeyword && next?.kind === K.StringLiteral) out.push(unquote(next.text));
    else if (t.kind === K.ImportKeyword && next?.kind === K.StringLiteral) out.push(unquote(next.text));
    else if (t.kind === K.ImportKeyword && next?.kind === K.OpenParenToken && tokens[i + 2]?.kind === K.StringLiteral) out.push(unquote(tokens[i + 2]!.text));
  }
  return out;
}

const unquote = (s: string) => s.slice(1, -1);

const NOT_FUNCTIONS = new Set<number>([K.IfKeyword, K.ForKeyword, K.WhileKeyword, K.SwitchKeyword, K.CatchKeyword, K.WithKeyword]);
/** Tokens after which a `{` in a return type opens a type literal, not the body. */
const TYPE_OPENERS = new Set<number>([K.ColonToken, K.BarToken, K.AmpersandToken, K.LessThanToken, K.CommaToken, K.OpenParenToken, K.OpenBracketToken, K.EqualsGreaterThanToken]);

/** Every function body: its first line, length in lines and a name for the report. */
export function functionsOf(file: string, tokens: Token[]): FunctionSpan[] {
  const spans: FunctionSpan[] = [];
  const stack: { fn: FunctionSpan | null }[] = [];
  const parenOpeners: number[] = [];
  const matchingParen = new Map<number, number>();
  let returnType = false;
  let typeDepth = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind === K.OpenParenToken) parenOpeners.push(i);
    else if (t.kind === K.CloseParenToken) matchingParen.set(i, parenOpeners.pop() ?? 0);
    if (t.kind === K.ColonToken && tokens[i - 1]?.kind === K.CloseParenToken) {
      returnType = true;
      typeDepth = 0;
      continue;
    }
    if (t.kind === K.OpenBraceToken) {
      const prev = tokens[i - 1];
      if (returnType && prev && TYPE_OPENERS.has(prev.kind) && prev.kind !== K.EqualsGreaterThanToken) {
        typeDepth++;
        stack.push({ fn: null });
        continue;
      }
      const isFn = returnType || isFunctionBrace(tokens, i, matchingParen);
      returnType = false;
      const fn = isFn ? { file, line: t.line, lines: 0, name: nameBefore(tokens, i, matchingParen) } : null;
      stack.push({ fn });
      continue;
    }
    if (t.kind === K.CloseBraceToken) {
      const top = stack.pop();
      if (returnType && typeDepth > 0) typeDepth--;
      if (top?.fn) {
        top.fn.lines = t.line - top.fn.line + 1;
        spans.push(top.fn);
      }
      continue;
    }
    if (returnType && typeDepth === 0 && (t.kind === K.SemicolonToken || t.kind === K.EqualsToken)) returnType = false;
  }
  return spans;
}

function isFunctionBrace(tokens: Token[], i: number, matchingParen: Map<number, number>): boolean {
  const prev = tokens[i - 1];
  if (!prev) return false;
  if (prev.kind === K.EqualsGreaterThanToken) return true;
  if (prev.kind !== K.CloseParenToken) return false;
  const open = matchingParen.get(i - 1) ?? 0;
  const before = tokens[open - 1];
  return !(before && NOT_FUNCTIONS.has(before.kind));
}

/** The identifier just before a function's parameter list, or "(anonymous)". */
function nameBefore(tokens: Token[], i: number, matchingParen: Map<number, number>): string {
  let j = i - 1;
  while (j > 0 && tokens[j]!.kind !== K.CloseParenToken) j--;
  const open = matchingParen.get(j) ?? j;
  const name = tokens[open - 1];
  return name && name.kind === K.Identifier ? name.text : "(anonymous)";
}

/** Resolves a relative specifier from a file in src/ to another file in src/ (or null for packages). */
function resolveImport(from: string, spec: string): string | null {
  if (!spec.startsWith(".")) return null;
  return relative("/src", resolve("/src", dirname(from), spec)).split("\\").join("/");
}

/** Import cycles, each as the list of files on it. */
export function findCycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return cycles;
}

export interface Report {
  violations: string[];
  files: { path: string; lines: number }[];
  functions: FunctionSpan[];
}

export function check(srcDir: string): Report {
  const sources = readSources(srcDir);
  const violations: string[] = [];
  const graph = new Map<string, string[]>();
  const functions: FunctionSpan[] = [];
  const files: { path: string; lines: number }[] = [];
  for (const f of sources) {
    const tokens = tokenize(f.text);
    const specs = importsOf(tokens);
    const local = specs.map((s) => resolveImport(f.path, s)).filter((s): s is string => s !== null);
    graph.set(f.path, local);
    for (const target of local) {
      for (const [layer, banned] of Object.entries(FORBIDDEN)) {
        if (!f.path.startsWith(layer)) continue;
        const bad = banned.find((b) => target.startsWith(b));
        if (bad) violations.push(`layers: ${f.path} imports ${target} (${layer} must not import ${bad})`);
      }
    }
    if (!f.path.startsWith("s3/") && specs.some((s) => s.startsWith("@aws-sdk/") || s.startsWith("@smithy/"))) {
      violations.push(`s3: ${f.path} imports the AWS SDK; only src/s3/ may`);
    }
    if (f.path !== "s3/client.ts" && tokens.some((t) => (t.kind === K.StringLiteral || t.kind === K.NoSubstitutionTemplateLiteral || t.kind === K.TemplateHead) && /x-amz-/i.test(t.text))) {
      violations.push(`s3: ${f.path} builds S3 request headers (x-amz-); only src/s3/client.ts may`);
    }
    const lines = f.text.split("\n").length - (f.text.endsWith("\n") ? 1 : 0);
    files.push({ path: f.path, lines });
    if (lines > MAX_FILE_LINES) violations.push(`size: src/${f.path} has ${lines} lines (at most ${MAX_FILE_LINES})`);
    for (const fn of functionsOf(f.path, tokens)) {
      functions.push(fn);
      if (fn.lines > MAX_FUNCTION_LINES) violations.push(`size: src/${f.path}:${fn.line} function ${fn.name} has ${fn.lines} lines (at most ${MAX_FUNCTION_LINES})`);
    }
  }
  for (const c of findCycles(graph)) violations.push(`cycle: ${c.map((p) => `src/${p}`).join(" <-> ")}`);
  return { violations, files, functions };
}

if (import.meta.main) {
  const root = resolve(import.meta.dir, "..");
  const r = check(join(root, "src"));
  if (Bun.argv.includes("--report")) {
    const top = (n: number) => [...r.functions].sort((a, b) => b.lines - a.lines).slice(0, n);
    console.log("longest files:");
    for (const f of [...r.files].sort((a, b) => b.lines - a.lines).slice(0, 10)) console.log(`  ${String(f.lines).padStart(4)}  src/${f.path}`);
    console.log("longest functions:");
    for (const f of top(15)) console.log(`  ${String(f.lines).padStart(4)}  src/${f.file}:${f.line} ${f.name}`);
  }
  for (const v of r.violations) console.log(v);
  console.log(`architecture: ${r.files.length} files, ${r.functions.length} functions, ${r.violations.length} violation(s)`);
  process.exit(r.violations.length ? 1 : 0);
}
