// The routing rules (rules.ts) applied to the module proxy's requests, as a
// layer around its `Request -> Response` handler:
//
//   exclude               403 (plain text naming the rule) for every request
//                         about the module, including sumdb lookups of it
//   refused version       403 for its .info/.mod/.zip and its sumdb lookup;
//                         left out of `list`; @latest and queries
//                         (@v/master.info) that resolve to it get 403
//   redirect              307 to the rule's proxy, same path (sumdb requests
//                         are not redirected: the database is global)
//   upstream              upstreamsFor() gives the handler the rule's list
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

import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { parseModRequest, unescapePath, unescapeVersion } from "./paths.ts";
import { errorText } from "./respond.ts";
import { RulesFile } from "./rules-file.ts";
import { versionAllowed, type Rule } from "./rules.ts";
import type { Upstream } from "./upstream.ts";

export interface RulesRoute {
  /** Answers `req` by the rules, calling `next` for what they let through. */
  serve(req: Request, prefix: string, next: (req: Request) => Promise<Response>): Promise<Response>;
  /** The upstream list an "upstream" rule gives the module of `rel` (a URL-layout path), else null. */
  upstreamsFor(rel: string): Upstream[] | null;
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

/** The layer for --rules FILE, or null without one. Throws a config error when the file is bad at start-up. */
export function rulesRoute(o: { rulesFile?: string | null; rulesCheckEveryMs?: number; metrics: Metrics; logger: Logger }): RulesRoute | null {
  if (!o.rulesFile) return null;
  const file = new RulesFile(o.rulesFile, { metrics: o.metrics, logger: o.logger, checkEveryMs: o.rulesCheckEveryMs });
  const { metrics } = o;

  /** The deciding rule when it is not a plain include-everything, else null. */
  function ruleFor(module: string): Rule | null {
    const rule = file.current().ruleFor(module);
    return rule.action === "include" && !rule.versions && !rule.deny.size ? null : rule;
  }

  async function checkVersionAnswer(req: Request, next: (req: Request) => Promise<Response>, rule: Rule, module: string): Promise<Response> {
    const { res, data } = await fullAnswer(req, next);
    if (!data) return passThrough(req, res);
    let version: unknown;
    try {
      version = (JSON.parse(new TextDecoder().decode(data)) as { Version?: unknown }).Version;
    } catch {
      version = undefined;
    }
    if (typeof version === "string" && !versionAllowed(rule, version)) {
      metrics.inc("modproxy_rules_refused");
      return refused(rule, module, version);
    }
    return rebuilt(req, res, data);
  }

  return {
    upstreamsFor(rel) {
      let module: string;
      try {
        const r = parseModRequest(rel);
        if (r.kind === "sumdb") return null;
        module = r.module;
      } catch {
        return null;
      }
      const rule = ruleFor(module);
      if (rule?.action !== "upstream") return null;
      metrics.inc("modproxy_rules_upstream_fetches");
      return rule.upstreams;
    },

    async serve(req, prefix, next) {
      const pathname = new URL(req.url).pathname;
      if ((req.method !== "GET" && req.method !== "HEAD") || !pathname.startsWith(`${prefix}/`)) return next(req);
      const rest = pathname.slice(prefix.length + 1);
      let r;
      try {
        r = parseModRequest(rest);
      } catch {
        return next(req); // the handler answers 400
      }

      if (r.kind === "sumdb") {
        // <db>/lookup/<module>@<version>: the database is asked about that module.
        const m = /^[^/]+\/lookup\/(.+)@([^@/]+)$/.exec(r.rest);
        if (!m) return next(req);
        let module: string;
        let version: string;
        try {
          module = unescapePath(m[1]!);
          version = unescapeVersion(m[2]!);
        } catch {
          return next(req);
        }
        const rule = ruleFor(module);
        if (rule?.action === "exclude") {
          metrics.inc("modproxy_rules_excluded");
          return excluded(rule, module);
        }
        if (rule && !versionAllowed(rule, version)) {
          metrics.inc("modproxy_rules_refused");
          return refused(rule, module, version);
        }
        return next(req);
      }

      const rule = ruleFor(r.module);
      if (!rule) return next(req);
      switch (rule.action) {
        case "exclude":
          metrics.inc("modproxy_rules_excluded");
          return excluded(rule, r.module);
        case "redirect":
          metrics.inc("modproxy_rules_redirected");
          return new Response(null, { status: 307, headers: { Location: `${rule.to}/${rest}`, "Cache-Control": "no-store" } });
        case "include":
        case "upstream":
          break;
      }
      if (!rule.versions && !rule.deny.size) return next(req);
      switch (r.kind) {
        case "list": {
          const { res, data } = await fullAnswer(req, next);
          if (!data) return passThrough(req, res);
          const lines = new TextDecoder().decode(data).split("\n").map((l) => l.trim()).filter(Boolean);
          // A line is a version, possibly followed by more fields (the go command reads the first).
          const kept = lines.filter((l) => versionAllowed(rule, l.split(/\s+/)[0]!));
          if (kept.length < lines.length) metrics.inc("modproxy_rules_list_filtered", lines.length - kept.length);
          return rebuilt(req, res, new TextEncoder().encode(kept.map((l) => `${l}\n`).join("")));
        }
        case "latest":
          return checkVersionAnswer(req, next, rule, r.module);
        case "file":
          if (!r.canonical) return checkVersionAnswer(req, next, rule, r.module);
          if (!versionAllowed(rule, r.version)) {
            metrics.inc("modproxy_rules_refused");
            return refused(rule, r.module, r.version);
          }
          return next(req);
      }
    },
  };
}
