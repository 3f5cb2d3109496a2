// The routing rules (rules/rules.ts) applied to the module proxy's requests, as a
// layer around its `Request -> Response` handler:
//
//   exclude               403 (plain text naming the rule) for every request
//                         about the module, including sumdb lookups of it
//   refused version       403 for its .info/.mod/.zip and its sumdb lookup;
//                         left out of `list`; @latest and queries
//                         (@v/master.info) that resolve to it get 403
//   redirect              307 to the rule's proxy, same path (sumdb requests
//                         are not redirected: the database is global)
//   upstream              upstreamsFor() gives the handler the rule's list,
//                         for the module of the request it parsed
//
// Why 403 and not 404 for refusals: the go command treats 404 and 410 as
// "not here, try the next GOPROXY entry", so a client with
// GOPROXY=gostash,direct would fetch a refused module straight from its
// origin; 403 stops it with our message ("server response: ..." in go's
// output). `list` is filtered rather than refused, so `go get m@latest`
// picks the highest allowed version.
//
// The store keeps the upstream's answers unfiltered and filtering happens
// on the way out, so a changed rules file takes effect at once, without
// clearing any cache. 403 answers carry Cache-Control: no-store.

import type { Logger } from "../../util/log.ts";
import type { Metrics } from "../../util/metrics.ts";
import { type ModRequest, type ModuleRequest, parseModRequest } from "../module/layout.ts";
import { unescapePath, unescapeVersion } from "../module/path.ts";
import { RulesFile } from "../rules/rules-file.ts";
import { versionAllowed, type Rule } from "../rules/rules.ts";
import type { Upstream } from "../upstream/fetch.ts";
import { errorText } from "./respond.ts";

export interface RulesRoute {
  /** Answers `req` by the rules, calling `next` for what they let through. */
  serve(req: Request, prefix: string, next: (req: Request) => Promise<Response>): Promise<Response>;
  /**
   * The upstream list an "upstream" rule gives `module` (of a request
   * parsed once, by the handler: decoding its path a second time would
   * read another module, or fail and fall back to --upstream), else null.
   */
  upstreamsFor(module: string): Upstream[] | null;
}

function excluded(rule: Rule, module: string): Response {
  return errorText(403, `gostash: module ${module} is excluded by ${rule.label}${rule.reason ? `: ${rule.reason}` : ""}`);
}

function refused(rule: Rule, module: string, version: string): Response {
  const allowed = [rule.versions ? `allowed versions ${JSON.stringify(rule.versions.source)}` : "", rule.deny.size ? `denied ${[...rule.deny].join(" ")}` : ""]
    .filter(Boolean)
    .join("; ");
  return errorText(403, `gostash: ${module}@${version} is refused by ${rule.label} (${allowed})${rule.reason ? `: ${rule.reason}` : ""}`);
}

const DROP = new Set(["etag", "content-length", "last-modified", "accept-ranges", "content-range"]);

/** A 200 answer of `next` rebuilt around new bytes (HEAD gets no body). */
function rebuilt(req: Request, from: Response, data: Uint8Array): Response {
  const headers = new Headers();
  for (const [k, v] of from.headers) if (!DROP.has(k.toLowerCase())) headers.set(k, v);
  headers.set("Content-Length", String(data.length));
  return new Response(req.method === "HEAD" ? null : data, { status: 200, headers });
}

/** Asks `next` for the full answer (no Range, no conditional, GET even for HEAD) so it can be inspected. */
async function fullAnswer(req: Request, next: (req: Request) => Promise<Response>): Promise<{ res: Response; data: Uint8Array | null }> {
  const res = await next(new Request(req.url, { method: "GET" }));
  if (res.status !== 200) return { res, data: null };
  return { res, data: new Uint8Array(await res.arrayBuffer()) };
}

function passThrough(req: Request, res: Response): Response {
  return req.method === "HEAD" && res.body ? new Response(null, { status: res.status, headers: res.headers }) : res;
}

type Next = (req: Request) => Promise<Response>;

class RulesLayer implements RulesRoute {
  constructor(
    private readonly file: RulesFile,
    private readonly metrics: Metrics,
  ) {}

  /** The deciding rule when it is not a plain include-everything, else null. */
  private ruleFor(module: string): Rule | null {
    const rule = this.file.current().ruleFor(module);
    return rule.action === "include" && !rule.versions && !rule.deny.size ? null : rule;
  }

  upstreamsFor(module: string): Upstream[] | null {
    const rule = this.ruleFor(module);
    if (rule?.action !== "upstream") return null;
    this.metrics.inc("modproxy_rules_upstream_fetches");
    return rule.upstreams;
  }

  async serve(req: Request, prefix: string, next: Next): Promise<Response> {
    const pathname = new URL(req.url).pathname;
    if ((req.method !== "GET" && req.method !== "HEAD") || !pathname.startsWith(`${prefix}/`)) return next(req);
    const rest = pathname.slice(prefix.length + 1);
    let r: ModRequest;
    try {
      r = parseModRequest(rest);
    } catch {
      return next(req); // the handler answers 400
    }
    return r.kind === "sumdb" ? this.serveLookup(req, r.rest, next) : this.serveModule(req, r, rest, next);
  }

  /** <db>/lookup/<module>@<version>: the database is asked about that module, so its rule applies. */
  private serveLookup(req: Request, rest: string, next: Next): Promise<Response> | Response {
    const m = /^[^/]+\/lookup\/(.+)@([^@/]+)$/.exec(rest);
    if (!m) return next(req);
    let module: string;
    let version: string;
    try {
      module = unescapePath(m[1]!);
      version = unescapeVersion(m[2]!);
    } catch {
      return next(req);
    }
    const rule = this.ruleFor(module);
    if (rule?.action === "exclude") {
      this.metrics.inc("modproxy_rules_excluded");
      return excluded(rule, module);
    }
    if (rule && !versionAllowed(rule, version)) {
      this.metrics.inc("modproxy_rules_refused");
      return refused(rule, module, version);
    }
    return next(req);
  }

  private async serveModule(req: Request, r: ModuleRequest, rest: string, next: Next): Promise<Response> {
    const rule = this.ruleFor(r.module);
    if (!rule) return next(req);
    switch (rule.action) {
      case "exclude":
        this.metrics.inc("modproxy_rules_excluded");
        return excluded(rule, r.module);
      case "redirect":
        this.metrics.inc("modproxy_rules_redirected");
        return new Response(null, { status: 307, headers: { Location: `${rule.to}/${rest}`, "Cache-Control": "no-store" } });
      case "include":
      case "upstream":
        break;
    }
    if (!rule.versions && !rule.deny.size) return next(req);
    switch (r.kind) {
      case "list":
        return this.filteredList(req, next, rule);
      case "latest":
        return this.checkVersionAnswer(req, next, rule, r.module);
      case "file":
        if (!r.canonical) return this.checkVersionAnswer(req, next, rule, r.module);
        if (!versionAllowed(rule, r.version)) {
          this.metrics.inc("modproxy_rules_refused");
          return refused(rule, r.module, r.version);
        }
        return next(req);
    }
  }

  /** `list` without the versions the rule refuses. */
  private async filteredList(req: Request, next: Next, rule: Rule): Promise<Response> {
    const { res, data } = await fullAnswer(req, next);
    if (!data) return passThrough(req, res);
    const lines = new TextDecoder().decode(data).split("\n").map((l) => l.trim()).filter(Boolean);
    // A line is a version, possibly followed by more fields (the go command reads the first).
    const kept = lines.filter((l) => versionAllowed(rule, l.split(/\s+/)[0]!));
    if (kept.length < lines.length) this.metrics.inc("modproxy_rules_list_filtered", lines.length - kept.length);
    return rebuilt(req, res, new TextEncoder().encode(kept.map((l) => `${l}\n`).join("")));
  }

  /** An .info answer (@latest, a query) whose version the rule refuses becomes 403. */
  private async checkVersionAnswer(req: Request, next: Next, rule: Rule, module: string): Promise<Response> {
    const { res, data } = await fullAnswer(req, next);
    if (!data) return passThrough(req, res);
    let version: unknown;
    try {
      version = (JSON.parse(new TextDecoder().decode(data)) as { Version?: unknown }).Version;
    } catch {
      version = undefined;
    }
    if (typeof version === "string" && !versionAllowed(rule, version)) {
      this.metrics.inc("modproxy_rules_refused");
      return refused(rule, module, version);
    }
    return rebuilt(req, res, data);
  }
}

/** The layer for --rules FILE, or null without one. Throws a config error when the file is bad at start-up. */
export function rulesRoute(o: { rulesFile?: string | null; rulesCheckEveryMs?: number; metrics: Metrics; logger: Logger }): RulesRoute | null {
  if (!o.rulesFile) return null;
  return new RulesLayer(new RulesFile(o.rulesFile, { metrics: o.metrics, logger: o.logger, checkEveryMs: o.rulesCheckEveryMs }), o.metrics);
}
