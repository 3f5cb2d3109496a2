// A tiny router for the daemon's HTTP side: a `Request -> Response` function
// (tests call it in-process; only `gostash serve` binds it with Bun.serve).
// Exact routes for the small endpoints, and prefix mounts for whole
// sub-handlers such as the module proxy at /mod.

export type HttpHandler = (req: Request) => Response | Promise<Response>;

export class Router {
  private readonly exact = new Map<string, Map<string, HttpHandler>>();
  private readonly mounts: { prefix: string; handler: HttpHandler }[] = [];

  /** Serve `method path` exactly. GET routes answer HEAD too. */
  on(method: string, path: string, handler: HttpHandler): this {
    let byMethod = this.exact.get(path);
    if (!byMethod) this.exact.set(path, (byMethod = new Map()));
    byMethod.set(method.toUpperCase(), handler);
    return this;
  }

  get(path: string, handler: HttpHandler): this {
    return this.on("GET", path, handler);
  }

  /**
   * Hand every request under `prefix` (e.g. "/mod") to `handler`, whatever
   * its method. The handler sees the full URL; longer prefixes win.
   */
  mount(prefix: string, handler: HttpHandler): this {
    const p = prefix.replace(/\/+$/, "");
    this.mounts.push({ prefix: p, handler });
    this.mounts.sort((a, b) => b.prefix.length - a.prefix.length);
    return this;
  }

  readonly fetch: HttpHandler = (req) => {
    const path = new URL(req.url).pathname;
    const byMethod = this.exact.get(path);
    if (byMethod) {
      const h = byMethod.get(req.method) ?? (req.method === "HEAD" ? byMethod.get("GET") : undefined);
      if (h) return h(req);
      return text(405, "method not allowed\n", { Allow: [...byMethod.keys()].join(", ") });
    }
    for (const m of this.mounts) {
      if (path === m.prefix || path.startsWith(`${m.prefix}/`)) return m.handler(req);
    }
    return text(404, "not found\n");
  };
}

export function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { "Content-Type": "text/plain; charset=utf-8", ...headers } });
}
