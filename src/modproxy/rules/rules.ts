// The routing rules file of the module proxy (--rules FILE, GOSTASH_RULES):
// which modules the proxy serves, which versions of them, and from where.
// Modelled on Athens' filter file and goproxy.io's router, as JSON:
//
//   {
//     "default": "include",
//     "rules": [
//       { "match": "example.com/secret,*.internal.example.com", "action": "exclude",
//         "reason": "internal code must not be fetched through the shared proxy" },
//       { "match": "example.com/lib", "versions": ">=v1.2.0 <v2", "deny": ["v1.3.1"] },
//       { "match": "corp.example.com", "action": "upstream",
//         "upstream": "https://goproxy.corp.example.com|https://proxy.golang.org" },
//       { "match": "golang.org/x", "action": "redirect", "to": "https://proxy.golang.org" }
//     ]
//   }
//
// Rules are tried in order and the first whose "match" matches the module
// path decides; "default" decides for the rest. Fields of a rule:
//
//   match     module path globs, a comma-separated string or an array, with
//             GOPRIVATE's semantics (module/globs.ts): "example.com/team" also
//             matches example.com/team/lib; "*" stays within one element;
//             spaces around each glob are dropped (a file is written by hand)
//   action    "include" (the default): serve normally
//             "exclude": 403 for everything about the module
//             "upstream": fetch the module from "upstream" (a GOPROXY-style
//                         list, as --upstream) instead of --upstream
//             "redirect": answer 307 with Location "to" + the same path
//                         (another module proxy's base URL)
//   versions  (include, upstream) only these versions: a range such as
//             ">=v1.2.0 <v2" or "<v1.4 || >=v1.5.1" (versions.ts)
//   deny      (include, upstream) these exact versions are refused
//   reason    text added to the 403 answers of this rule
//   name      how answers and logs name the rule (default: #N and its match)
//   comment   ignored
//
// "default" is "include", "exclude", or a rule object without "match".
// Unknown fields are errors, so that a typo never silently changes the
// policy. A refused version is refused everywhere: its .info/.mod/.zip
// and sumdb lookup get 403, it is left out of `list`, and @latest or a
// query (@v/master.info) resolving to it gets 403. See serve/rules.ts for the
// HTTP side and rules-file.ts for reloading.

import { parseUpstreams, type Upstream } from "../upstream/fetch.ts";
import { PatternError, PrefixPatterns } from "../module/globs.ts";
import { canonicalVersion, ConstraintError, VersionRange } from "./versions.ts";

export class RulesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RulesError";
  }
}

export type Action = "include" | "exclude" | "upstream" | "redirect";

export interface Rule {
  /** 1-based position in "rules", or 0 for the default. */
  index: number;
  /** How messages name it. */
  label: string;
  action: Action;
  patterns: PrefixPatterns | null;
  versions: VersionRange | null;
  deny: Set<string>;
  upstreams: Upstream[] | null;
  /** Base URL for redirects, without a trailing slash. */
  to: string | null;
  reason: string | null;
}

const RULE_KEYS = new Set(["match", "action", "versions", "deny", "upstream", "to", "reason", "name", "comment"]);
const TOP_KEYS = new Set(["default", "rules", "comment"]);
const ACTIONS: Action[] = ["include", "exclude", "upstream", "redirect"];

function parseRule(raw: unknown, index: number): Rule {
  const where = index === 0 ? "default" : `rule #${index}`;
  const fail = (msg: string) => new RulesError(`${where}: ${msg}`);
  if (typeof raw === "string") raw = { action: raw };
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw fail("must be an object");
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!RULE_KEYS.has(k)) throw fail(`unknown field ${JSON.stringify(k)}`);
  const str = (k: string): string | null => {
    const v = r[k];
    if (v === undefined) return null;
    if (typeof v !== "string") throw fail(`"${k}" must be a string`);
    return v;
  };

  let patterns: PrefixPatterns | null = null;
  if (index === 0) {
    if (r.match !== undefined) throw fail(`has no "match" (it applies to everything no rule matched)`);
  } else {
    const m = r.match;
    const list = typeof m === "string" ? m.split(",") : Array.isArray(m) && m.every((x) => typeof x === "string") ? m : null;
    if (list === null) throw fail(`"match" must be a string or an array of strings`);
    try {
      patterns = new PrefixPatterns(list.map((g) => g.trim()).join(","));
    } catch (err) {
      if (err instanceof PatternError) throw fail(err.message);
      throw err;
    }
    if (patterns.empty) throw fail(`"match" is empty`);
  }

  const action = (str("action") ?? "include") as Action;
  if (!ACTIONS.includes(action)) throw fail(`unknown action ${JSON.stringify(action)} (one of ${ACTIONS.join(", ")})`);

  let versions: VersionRange | null = null;
  const deny = new Set<string>();
  const vs = str("versions");
  const dn = r.deny;
  if ((vs !== null || dn !== undefined) && action !== "include" && action !== "upstream") {
    throw fail(`"versions" and "deny" go with "include" or "upstream", not "${action}"`);
  }
  try {
    if (vs !== null) versions = new VersionRange(vs);
    if (dn !== undefined) {
      if (!Array.isArray(dn) || !dn.every((x) => typeof x === "string")) throw fail(`"deny" must be an array of versions`);
      for (const v of dn as string[]) {
        if (v !== canonicalVersion(v)) throw fail(`"deny": ${JSON.stringify(v)} is not a full version (like ${canonicalVersion(v)})`);
        deny.add(v);
      }
    }
  } catch (err) {
    if (err instanceof ConstraintError) throw fail(err.message);
    throw err;
  }

  let upstreams: Upstream[] | null = null;
  const up = str("upstream");
  if (action === "upstream") {
    if (!up) throw fail(`action "upstream" needs "upstream": a GOPROXY-style list of proxy URLs`);
    try {
      upstreams = parseUpstreams(up);
    } catch (err) {
      throw fail((err as Error).message.replace(/^config: --upstream: /, `"upstream": `));
    }
  } else if (up !== null) throw fail(`"upstream" goes with action "upstream"`);

  let to: string | null = null;
  const t = str("to");
  if (action === "redirect") {
    if (!t || !/^https?:\/\/[^/]/.test(t)) throw fail(`action "redirect" needs "to": the http(s) base URL of another module proxy`);
    try {
      new URL(t);
    } catch {
      throw fail(`"to" is not a URL: ${JSON.stringify(t)}`);
    }
    to = t.replace(/\/+$/, "");
  } else if (t !== null) throw fail(`"to" goes with action "redirect"`);

  const name = str("name");
  const label = name ? JSON.stringify(name) : index === 0 ? "the default rule" : `rule #${index} (${JSON.stringify(patterns!.source)})`;
  return { index, label, action, patterns, versions, deny, upstreams, to, reason: str("reason") };
}

export class RuleSet {
  constructor(
    readonly rules: Rule[],
    readonly fallback: Rule,
  ) {}

  /** The rule deciding for a module: the first that matches, else the default. */
  ruleFor(modulePath: string): Rule {
    for (const r of this.rules) if (r.patterns!.matches(modulePath)) return r;
    return this.fallback;
  }
}

/** Whether a rule admits this version of its module. */
export function versionAllowed(rule: Rule, version: string): boolean {
  if (rule.deny.has(version)) return false;
  return rule.versions ? rule.versions.allows(version) : true;
}

/** Parses the text of a rules file; throws RulesError naming what is wrong. */
export function parseRules(text: string): RuleSet {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new RulesError(`not valid JSON: ${(err as Error).message}`);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) throw new RulesError(`must be a JSON object with "rules" and "default"`);
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) if (!TOP_KEYS.has(k)) throw new RulesError(`unknown field ${JSON.stringify(k)} (expected "default", "rules")`);
  if (d.rules !== undefined && !Array.isArray(d.rules)) throw new RulesError(`"rules" must be an array`);
  const rules = ((d.rules as unknown[] | undefined) ?? []).map((r, i) => parseRule(r, i + 1));
  const fallback = parseRule(d.default ?? "include", 0);
  return new RuleSet(rules, fallback);
}
