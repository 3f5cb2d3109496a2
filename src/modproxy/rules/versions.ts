// Version constraints of the routing rules (rules.ts):
//
//   ">=v1.2.0 <v2"           comparators separated by spaces must all hold
//   "<v1.4.0 || >=v1.5.1"    alternatives separated by "||", any may hold
//   "v1.3.1"  "=v1.3.1"      exactly that version
//   "!=v1.3.1"               anything but that version
//
// Comparators are = != < <= > >=; versions are semver with a "v", and may
// be shortened as the go command allows ("v2" is v2.0.0, "v1.2" is
// v1.2.0). Comparison is semver's (golang.org/x/mod/semver.Compare):
// prereleases and pseudo-versions sort before their release, so
// "<v2" admits v2.0.0-rc.1, and ">=v1.2.0" refuses v0.0.0-2024...-abcdef
// pseudo-versions. The "+incompatible" suffix is ignored.

import { compareSemver } from "../module/semver.ts";

export class ConstraintError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConstraintError";
  }
}

type Op = "=" | "!=" | "<" | "<=" | ">" | ">=";

const VERSION = /^v(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+incompatible)?)?)?$/;

/** "v1" -> "v1.0.0", "v1.2" -> "v1.2.0"; throws on anything that is not a semver version. */
export function canonicalVersion(v: string): string {
  const m = VERSION.exec(v);
  if (!m) throw new ConstraintError(`${JSON.stringify(v)} is not a semantic version (like v1.2.3)`);
  return `v${m[1]}.${m[2] ?? "0"}.${m[3] ?? "0"}${m[4] ?? ""}${m[5] ?? ""}`;
}

export class VersionRange {
  private readonly alternatives: { op: Op; v: string }[][];

  constructor(readonly source: string) {
    const alts = source.split("||").map((a) => a.trim());
    if (alts.some((a) => a === "")) throw new ConstraintError(`empty alternative in ${JSON.stringify(source)}`);
    this.alternatives = alts.map((alt) =>
      alt
        .split(/\s+/)
        // ">= v1.2.0" with a space is common enough to accept.
        .reduce<string[]>((acc, tok) => (acc.length && /^(=|!=|<|<=|>|>=)$/.test(acc.at(-1)!) ? [...acc.slice(0, -1), acc.at(-1)! + tok] : [...acc, tok]), [])
        .map((tok) => {
          const m = /^(!=|<=|>=|=|<|>)?(.*)$/.exec(tok)!;
          return { op: (m[1] ?? "=") as Op, v: canonicalVersion(m[2]!) };
        }),
    );
  }

  allows(version: string): boolean {
    return this.alternatives.some((alt) =>
      alt.every(({ op, v }) => {
        const c = compareSemver(version, v);
        switch (op) {
          case "=":
            return c === 0;
          case "!=":
            return c !== 0;
          case "<":
            return c < 0;
          case "<=":
            return c <= 0;
          case ">":
            return c > 0;
          case ">=":
            return c >= 0;
        }
      }),
    );
  }
}
