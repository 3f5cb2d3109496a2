// GOPRIVATE-style module path patterns (--private), with the go command's
// semantics (golang.org/x/mod/module.MatchPrefixPatterns, `go help
// module-private`), so one value means the same thing to the go command and
// to gostash:
//
//   - a comma-separated list of globs; empty entries are skipped and a
//     trailing "/" is dropped (no trimming of spaces: the go command does not
//     trim them either)
//   - a glob with N slashes is matched against the first N+1 path elements
//     of the module path, so "corp.example.com" matches
//     "corp.example.com/team/lib" but not "corp.example.com.evil.org"
//   - each glob has path.Match syntax: "*" is any run of characters but "/",
//     "?" one character but "/", "[...]" / "[^...]" a class of characters
//     and ranges, "\" escapes the next character
//   - a malformed glob ("[", "a\", "[]", "[a-]") never matches

/** Compiled globs cache: the list is fixed for the life of the daemon. */
const compiled = new Map<string, RegExp | null>();

function escapeForRegExp(c: string): string {
  return `\\u{${c.codePointAt(0)!.toString(16)}}`;
}

/** A path.Match glob as an anchored RegExp, or null when it is malformed. */
export function compileGlob(glob: string): RegExp | null {
  const have = compiled.get(glob);
  if (have !== undefined) return have;
  const chars = [...glob];
  let re = "";
  let i = 0;
  // One character of a class: plain, or "\"-escaped; "-" and "]" must be escaped there.
  const classChar = (): string | null => {
    let c = chars[i];
    if (c === undefined || c === "-" || c === "]") return null;
    if (c === "\\") c = chars[++i];
    if (c === undefined) return null;
    i++;
    // A class must be closed: something has to follow every character.
    return i < chars.length ? c : null;
  };
  let bad = false;
  while (i < chars.length && !bad) {
    const c = chars[i]!;
    if (c === "*") {
      re += "[^/]*";
      i++;
    } else if (c === "?") {
      re += "[^/]";
      i++;
    } else if (c === "\\") {
      if (i + 1 >= chars.length) bad = true;
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
        if (lo === null) {
          bad = true;
          break;
        }
        let hi = lo;
        if (chars[i] === "-") {
          i++;
          const h = classChar();
          if (h === null) {
            bad = true;
            break;
          }
          hi = h;
        }
        // An inverted range is not an error for path.Match: it matches nothing.
        if (lo.codePointAt(0)! <= hi.codePointAt(0)!) ranges.push(lo === hi ? escapeForRegExp(lo) : `${escapeForRegExp(lo)}-${escapeForRegExp(hi)}`);
        n++;
      }
      // Classes may match "/" (path.Match does not exclude it inside brackets).
      re += negated ? (ranges.length ? `[^${ranges.join("")}]` : "[^]") : ranges.length ? `[${ranges.join("")}]` : "[]";
    } else {
      re += escapeForRegExp(c);
      i++;
    }
  }
  const out = bad ? null : new RegExp(`^${re}$`, "u");
  if (compiled.size > 1000) compiled.clear();
  compiled.set(glob, out);
  return out;
}

/** path.Match: does the whole of name match glob? (false for a malformed glob) */
export function pathMatch(glob: string, name: string): boolean {
  return compileGlob(glob)?.test(name) ?? false;
}

/**
 * The first glob of the comma-separated list that matches a path prefix of
 * target (whole path elements), or null. The answer names the glob so error
 * messages can tell the user which pattern applied.
 */
export function matchingPattern(globs: string, target: string): string | null {
  for (const raw of globs.split(",")) {
    const glob = raw.endsWith("/") ? raw.slice(0, -1) : raw;
    if (glob === "") continue;
    const slashes = glob.split("/").length - 1;
    const elems = target.split("/");
    // Fewer elements than the glob has: it cannot match.
    if (elems.length < slashes + 1) continue;
    if (pathMatch(glob, elems.slice(0, slashes + 1).join("/"))) return glob;
  }
  return null;
}

/** module.MatchPrefixPatterns. */
export function matchPrefixPatterns(globs: string, target: string): boolean {
  return matchingPattern(globs, target) !== null;
}
