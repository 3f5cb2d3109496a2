// The daemon's HTTP endpoints as one `Request -> Response` function:
//   /metrics      Prometheus text format
//   /debug/vars   JSON (expvar style): counters, gauges, histograms, process
//   /healthz      200 "ok" while serving, 503 while shutting down
// More services (the module proxy at /mod) mount on the returned router.

import { VERSION } from "../version.ts";
import type { Metrics } from "../util/metrics.ts";
import { LATENCY_BUCKETS } from "../util/metrics.ts";
import { CONTENT_TYPE, renderPrometheus } from "./prometheus.ts";
import { Router, text } from "./router.ts";
import { hideUrlPasswords } from "../util/redact.ts";

export interface HttpOptions {
  metrics: Metrics;
  /** null while healthy, else why not (e.g. "shutting down"). */
  unhealthy?: () => string | null;
  /** Extra facts for /debug/vars (addresses, cache dir, ...). */
  info?: () => Record<string, unknown>;
}

export function createHttpRouter(o: HttpOptions): Router {
  const { metrics } = o;
  const started = Date.now();
  const router = new Router();

  router.get("/healthz", () => {
    const why = o.unhealthy?.() ?? null;
    return why ? text(503, `${why}\n`) : text(200, "ok\n");
  });

  router.get(
    "/metrics",
    () =>
      new Response(
        renderPrometheus(metrics, {
          info: [{ name: "build_info", help: "Version of the running gostash.", labels: { version: VERSION } }],
        }),
        { headers: { "Content-Type": CONTENT_TYPE } },
      ),
  );

  router.get("/debug/vars", () => {
    const histograms: Record<string, unknown> = {};
    for (const [k, h] of metrics.histograms) {
      histograms[k] = {
        count: h.count,
        sum: h.sum,
        per_bucket: Object.fromEntries(LATENCY_BUCKETS.map((le, i) => [String(le), h.counts[i]]).concat([["+Inf", h.counts.at(-1)]])),
      };
    }
    const body = {
      version: VERSION,
      pid: process.pid,
      cmdline: redactArgs(process.argv),
      uptime_seconds: (Date.now() - started) / 1000,
      memory: process.memoryUsage(),
      ...(o.info?.() ?? {}),
      metrics: metrics.snapshot(),
      histograms,
    };
    return Response.json(body);
  });

  return router;
}

/** The command line with token values hidden (--token=X, --token X, --read-token ...), and passwords in URLs. */
export function redactArgs(argv: string[]): string[] {
  const out: string[] = [];
  let hideNext = false;
  for (const a of argv) {
    if (hideNext) {
      out.push("***");
      hideNext = false;
      continue;
    }
    const m = /^(--?(?:read-)?token)(=.*)?$/.exec(a);
    if (m) {
      if (m[2] !== undefined) out.push(`${m[1]}=***`);
      else {
        out.push(a);
        hideNext = true;
      }
      continue;
    }
    out.push(hideUrlPasswords(a));
  }
  return out;
}
