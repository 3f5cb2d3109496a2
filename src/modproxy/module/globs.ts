// Module path globs with the go command's GOPRIVATE/GONOSUMDB semantics
// (golang.org/x/mod/module.MatchPrefixPatterns, `go help module-private`),
// so one value means the same thing to the go command and to gostash. Used
// by --private (upstream/private.ts), the rules file's "match"
// (rules/rules.ts) and the no-lookup paths of `mod import` (commands/mod.ts):
//
//   - a comma-separated list of globs; empty entries are skipped and a
//     trailing "/" is dropped (no trimming of spaces: the go command does not
//     trim them either, and --private is handed to it as GOPRIVATE)
//   - a glob with N slashes is matched against the first N+1 path elements
//     of the module path, so "corp.example.com" matches
//     "corp.example.com/team/lib" but not "corp.example.com.evil.org"
//   - each glob has path.Match syntax: "*" is any run of characters but "/",
//     "?" one character but "/", "[...]" / "[^...]" a class of characters
//     and ranges, "\" escapes the next character
//
// A malformed glob ("[", "a\", "[]", "[a-]") is a PatternError, and so is a
// backwards range ("[z-a]"): the go command silently ignores the first and
// path.Match lets the second match nothing, but a list that silently
// matches less than it says would send private names to public servers.

export class PatternError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PatternError";
  }
}

interface Compiled {
  /** path.Match's answer as a RegExp; null when path.Match rejects the glob. */
  re: RegExp | null;
  /** Why the glob is refused here (malformed, or a backwards range). */
  problem: string | null;
}

/** Compiled globs cache: the lists are fixed for the life of the daemon or a rules file. */
const cache = new Map<string, Compiled>();

function escapeForRegExp(c: string): string {
  return `\\u{${c.codePointAt(0)!.toString(16)}}`;
}

function compile(glob: string): Compiled {
  const have = cache.get(glob);
  if (have) return have;
  const chars = [...glob];
  let re = "";
  let i = 0;
  let bad: string | null = null;
  let backwards: string | null = null;
  // One character of a class: plain, or "\"-escaped; "-" and "]" must be escaped there.
  const classChar = (): string | null => {
    let c = chars[i];
    if (c === "-" || c === "]") bad = "bad character class";
    if (c === "\\") c = chars[++i];
    if (c === undefined) bad = chars[i - 1] === "\\" ? "trailing backslash" : "unterminated [";
    if (bad) return null;
    i++;
    // A class must be closed: something has to follow every character.
    if (i >= chars.length) bad = "unterminated [";
    return bad ? null : c!;
  };
  while (i < chars.length && !bad) {
    const c = chars[i]!;
    if (c === "*") {
      re += "[^/]*";
      i++;
    } else if (c === "?") {
      re += "[^/]";
      i++;
    } else if (c === "\\") {
      if (i + 1 >= chars.length) bad = "trailing backslash";
      else {
        re += escapeForRegExp(chars[i + 1]!);
        i += 2;
      }
    } else if (c === "[") {
      i++;
      let negated = false;
      if (chars[i] === "^") {
        negated = true;
        i++;
      }
      const ranges: string[] = [];
      let n = 0;
      for (;;) {
        if (chars[i] === "]" && n > 0) {
          i++;
          break;
        }
        const lo = classChar();
        if (lo === null) break;
        let hi = lo;
        if (chars[i] === "-") {
          i++;
          const h = classChar();
          if (h === null) break;
          hi = h;
        }
        // An inverted range is not an error for path.Match: it matches nothing.
        if (lo.codePointAt(0)! <= hi.codePointAt(0)!) ranges.push(lo === hi ? escapeForRegExp(lo) : `${escapeForRegExp(lo)}-${escapeForRegExp(hi)}`);
        else backwards ??= `range ${lo}-${hi} is backwards`;
        n++;
      }
      // Classes may match "/" (path.Match does not exclude it inside brackets).
      re += negated ? (ranges.length ? `[^${ranges.join("")}]` : "[^]") : ranges.length ? `[${ranges.join("")}]` : "[]";
    } else {
      re += escapeForRegExp(c);
      i++;
    }
  }
  const out: Compiled = { re: bad ? null : new RegExp(`^${re}$`, "u"), problem: bad ?? backwards };
  if (cache.size > 1000) cache.clear();
  cache.set(glob, out);
  return out;
}

/** Go's path.Match: does the whole of name match glob? (false for a glob path.Match rejects) */
export function pathMatch(glob: string, name: string): boolean {
  return compile(glob).re?.test(name) ?? false;
}

/** A comma-separated glob list, checked once: `match(modulePath)` as MatchPrefixPatterns. */
export class PrefixPatterns {
  private readonly globs: { glob: string; re: RegExp; slashes: number }[] = [];

  /** Throws PatternError naming the first bad glob. */
  constructor(readonly source: string) {
    for (const raw of source.split(",")) {
      const glob = raw.endsWith("/") ? raw.slice(0, -1) : raw;
      if (glob === "") continue;
      const { re, problem } = compile(glob);
      if (problem || !re) throw new PatternError(`bad glob ${JSON.stringify(glob)}: ${problem}`);
      this.globs.push({ glob, re, slashes: glob.split("/").length - 1 });
    }
  }

  get empty(): boolean {
    return this.globs.length === 0;
  }

  /**
   * The first glob that matches a path prefix of modulePath (whole path
   * elements), or null. It names the glob so that messages can tell the user
   * which pattern applied.
   */
  match(modulePath: string): string | null {
    const elems = modulePath.split("/");
    for (const g of this.globs) {
      // Fewer elements than the glob has: it cannot match.
      if (elems.length < g.slashes + 1) continue;
      if (g.re.test(elems.slice(0, g.slashes + 1).join("/"))) return g.glob;
    }
    return null;
  }

  matches(modulePath: string): boolean {
    return this.match(modulePath) !== null;
  }
}
