// Module path globs with the go command's GOPRIVATE/GONOSUMDB semantics
// (golang.org/x/mod/module.MatchPrefixPatterns): a comma-separated list of
// path.Match globs, each matched against the leading path elements of the
// module path — as many elements as the glob has — so "example.com/team"
// matches "example.com/team/lib" too, and "*.corp.example" matches every
// module under any subdomain of corp.example.
//
// path.Match syntax: "*" any run of non-slash characters, "?" one
// non-slash character, "[abc]" "[a-z]" "[^a-z]" classes, "\" escapes the
// next character. A malformed glob is a PatternError here (the go command
// silently ignores it; a policy file should say so instead).

export class PatternError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PatternError";
  }
}

function escapeRe(c: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(c) ? `\\${c}` : c;
}

/** Compiles one path.Match glob to an anchored RegExp; throws PatternError when malformed. */
export function compileGlob(glob: string): RegExp {
  let re = "";
  let i = 0;
  const bad = (why: string) => new PatternError(`bad glob ${JSON.stringify(glob)}: ${why}`);
  while (i < glob.length) {
    const c = glob[i]!;
    if (c === "*") {
      re += "[^/]*";
      i++;
    } else if (c === "?") {
      re += "[^/]";
      i++;
    } else if (c === "\\") {
      if (i + 1 >= glob.length) throw bad("trailing backslash");
      re += escapeRe(glob[i + 1]!);
      i += 2;
    } else if (c === "[") {
      i++;
      let cls = "";
      if (glob[i] === "^") {
        cls += "^";
        i++;
      }
      let ranges = 0;
      for (;;) {
        if (i >= glob.length) throw bad("unterminated [");
        if (glob[i] === "]" && ranges > 0) {
          i++;
          break;
        }
        const lo = charAt();
        if (glob[i] === "-") {
          i++;
          const hi = charAt();
          if (hi < lo) throw bad(`range ${lo}-${hi} is backwards`);
          cls += `${escapeRe(lo)}-${escapeRe(hi)}`;
        } else cls += escapeRe(lo);
        ranges++;
      }
      re += `[${cls}]`;
    } else {
      re += escapeRe(c);
      i++;
    }
  }
  return new RegExp(`^${re}$`);

  /** One character of a class (path.Match getEsc). */
  function charAt(): string {
    const c = glob[i];
    if (c === undefined || c === "-" || c === "]") throw bad("bad character class");
    if (c === "\\") {
      i++;
      if (i >= glob.length) throw bad("trailing backslash");
    }
    return glob[i++]!;
  }
}

/** A compiled comma-separated glob list: `matches(modulePath)` as MatchPrefixPatterns. */
export class PrefixPatterns {
  private readonly globs: { re: RegExp; slashes: number }[];
  readonly source: string;

  constructor(list: string) {
    this.source = list;
    this.globs = list
      .split(",")
      .map((g) => g.trim().replace(/\/$/, ""))
      .filter(Boolean)
      .map((g) => ({ re: compileGlob(g), slashes: g.split("/").length - 1 }));
  }

  get empty(): boolean {
    return this.globs.length === 0;
  }

  matches(path: string): boolean {
    for (const g of this.globs) {
      // The first slashes+1 elements of the path, if it has that many.
      let n = g.slashes;
      let prefix = path;
      for (let i = 0; i < path.length; i++) {
        if (path[i] !== "/") continue;
        if (n === 0) {
          prefix = path.slice(0, i);
          break;
        }
        n--;
      }
      if (n > 0) continue;
      if (g.re.test(prefix)) return true;
    }
    return false;
  }
}
