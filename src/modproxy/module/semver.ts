// Semantic versions as golang.org/x/mod/semver orders them: the order of
// `list`, of @latest (offline, serve/offline.ts) and of the version ranges
// of the routing rules (rules/versions.ts); and which tokens are versions
// at all (semver.IsValid: the lines of a `list`, module/validate.ts).
// Build suffixes such as "+incompatible" are ignored; prereleases sort
// before their release.

interface Semver {
  nums: [number, number, number];
  pre: string[];
}

function parseSemver(v: string): Semver | null {
  const m = /^v(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(v);
  if (!m) return null;
  return { nums: [Number(m[1]), Number(m[2]), Number(m[3])], pre: m[4] ? m[4].split(".") : [] };
}

/** semver.Compare for canonical versions (build suffixes such as +incompatible ignored). */
export function compareSemver(a: string, b: string): number {
  const x = parseSemver(a);
  const y = parseSemver(b);
  if (!x || !y) return x ? 1 : y ? -1 : a < b ? -1 : a > b ? 1 : 0;
  for (let i = 0; i < 3; i++) if (x.nums[i] !== y.nums[i]) return x.nums[i]! < y.nums[i]! ? -1 : 1;
  if (x.pre.length === 0 || y.pre.length === 0) return x.pre.length === y.pre.length ? 0 : x.pre.length === 0 ? 1 : -1;
  for (let i = 0; i < Math.min(x.pre.length, y.pre.length); i++) {
    const p = x.pre[i]!;
    const q = y.pre[i]!;
    if (p === q) continue;
    const pn = /^\d+$/.test(p);
    const qn = /^\d+$/.test(q);
    if (pn && qn) return p.length !== q.length ? (p.length < q.length ? -1 : 1) : p < q ? -1 : 1;
    if (pn !== qn) return pn ? -1 : 1;
    return p < q ? -1 : 1;
  }
  return x.pre.length === y.pre.length ? 0 : x.pre.length < y.pre.length ? -1 : 1;
}

const NUM = "(?:0|[1-9][0-9]*)";
const PRE_ID = "(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)";
const BUILD_ID = "[0-9A-Za-z-]+";
/** semver.IsValid: vMAJOR[.MINOR[.PATCH[-pre][+build]]], no leading zeros in numbers. */
const VALID = new RegExp(`^v${NUM}(?:\\.${NUM}(?:\\.${NUM}(?:-${PRE_ID}(?:\\.${PRE_ID})*)?(?:\\+${BUILD_ID}(?:\\.${BUILD_ID})*)?)?)?$`);

/** golang.org/x/mod/semver.IsValid ("v1", "v1.2" and "v1.2.3-rc.1+meta" are valid). */
export function isValidSemver(v: string): boolean {
  return VALID.test(v);
}

const PSEUDO = /^v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;

export function isPseudoVersion(v: string): boolean {
  return PSEUDO.test(v);
}

export function isPrerelease(v: string): boolean {
  return (parseSemver(v)?.pre.length ?? 0) > 0;
}

/** The version @latest answers: highest release, else highest prerelease; null if none. */
export function latestOf(versions: string[]): string | null {
  const sorted = [...versions].sort(compareSemver);
  const rel = sorted.filter((v) => !isPrerelease(v));
  return rel.at(-1) ?? sorted.at(-1) ?? null;
}
