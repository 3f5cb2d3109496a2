// Shared-token access control for `gostash serve`.
//
// Two kinds of token, both optional:
// - the read-write token (--token / GOSTASH_TOKEN): full access;
// - the read-only token (--read-token / GOSTASH_READ_TOKEN): may read the
//   cache and the module proxy, never change what other clients get.
// When neither is set, nothing is checked (the daemon binds loopback and
// owner-only Unix sockets by default). When one is set, every plugin
// connection and every HTTP request except /healthz must present one.
//
// Comparison is constant-time: both sides are hashed to SHA-256 first (equal
// lengths whatever the input) and compared with crypto.timingSafeEqual, and
// both tokens are always checked, so neither the length nor which token
// matched leaks through timing.
//
// Plugin socket handshake (src/daemon/server.ts, src/daemon/bridge.ts): the
// bridge's first bytes are one line `GOSTASH-AUTH <token>\n`; the daemon
// answers with the usual capability line if the token is good, or with one
// line `GOSTASH-ERROR <reason>\n` and hangs up.

// The default import (not a named one), so tests can observe the calls.
import crypto from "node:crypto";

export type Access = "rw" | "ro" | "none";

export const AUTH_PREFIX = "GOSTASH-AUTH ";
export const ERROR_PREFIX = "GOSTASH-ERROR ";
/** The auth line may not be longer than this (token included). */
export const MAX_AUTH_LINE = 4096;

export interface Tokens {
  token?: string | null;
  readToken?: string | null;
}

const digest = (s: string) => crypto.createHash("sha256").update(s, "utf8").digest();

/** Constant-time equality of two strings (via their SHA-256 digests). */
export function safeEqual(given: string, expected: string): boolean {
  return crypto.timingSafeEqual(digest(given), digest(expected));
}

export class TokenChecker {
  private readonly rw: Buffer | null;
  private readonly ro: Buffer | null;

  constructor(t: Tokens) {
    const rw = t.token || null;
    const ro = t.readToken || null;
    if (rw !== null && ro !== null && rw === ro) throw new Error("config: --read-token must differ from --token");
    for (const [name, v] of [["--token", rw], ["--read-token", ro]] as const) {
      if (v !== null && (/[\s\x00-\x1f\x7f]/.test(v) || v.length > 1024)) {
        throw new Error(`config: ${name}: no spaces or control characters, at most 1024 characters`);
      }
    }
    this.rw = rw === null ? null : digest(rw);
    this.ro = ro === null ? null : digest(ro);
  }

  /** Is any token configured (i.e. must clients authenticate)? */
  get required(): boolean {
    return this.rw !== null || this.ro !== null;
  }

  /** What a client presenting `given` (null: nothing) may do. */
  check(given: string | null): Access {
    if (!this.required) return "rw";
    if (given === null) return "none";
    const d = digest(given);
    // Both comparisons always run.
    const isRW = this.rw !== null && crypto.timingSafeEqual(d, this.rw);
    const isRO = this.ro !== null && crypto.timingSafeEqual(d, this.ro);
    return isRW ? "rw" : isRO ? "ro" : "none";
  }
}

/**
 * The token an HTTP request carries: `Authorization: Bearer <token>`, or HTTP
 * Basic with the token as password (GOPROXY=http://user:TOKEN@host/mod), or as
 * user name when the password is empty (GOPROXY=http://TOKEN@host/mod).
 */
export function tokenFromRequest(req: Request): string | null {
  const h = req.headers.get("authorization");
  if (!h) return null;
  const sp = h.indexOf(" ");
  if (sp < 0) return null;
  const scheme = h.slice(0, sp).toLowerCase();
  const rest = h.slice(sp + 1).trim();
  if (scheme === "bearer") return rest || null;
  if (scheme === "basic") {
    let decoded: string;
    try {
      decoded = Buffer.from(rest, "base64").toString("utf8");
    } catch {
      return null;
    }
    const colon = decoded.indexOf(":");
    if (colon < 0) return decoded || null;
    const pass = decoded.slice(colon + 1);
    return pass || decoded.slice(0, colon) || null;
  }
  return null;
}

/** The credential part of an auth line (without the newline), or null if it is not one. */
export function parseAuthLine(line: string): string | null {
  const l = line.endsWith("\r") ? line.slice(0, -1) : line;
  if (!l.startsWith(AUTH_PREFIX)) return null;
  return l.slice(AUTH_PREFIX.length);
}

/**
 * Wraps an HTTP handler: /healthz stays open; everything else needs a token
 * when one is configured; read-only tokens may only GET and HEAD.
 */
export function requireHttpAuth(
  checker: TokenChecker,
  next: (req: Request) => Response | Promise<Response>,
  onRefused?: (why: "unauthorized" | "forbidden") => void,
): (req: Request) => Response | Promise<Response> {
  if (!checker.required) return next;
  return (req) => {
    let path: string;
    try {
      path = new URL(req.url).pathname;
    } catch {
      path = "";
    }
    if (path === "/healthz") return next(req);
    const access = checker.check(tokenFromRequest(req));
    if (access === "none") {
      onRefused?.("unauthorized");
      return new Response("unauthorized: a valid token is required (Authorization: Bearer TOKEN, or user:TOKEN in the URL)\n", {
        status: 401,
        headers: { "Content-Type": "text/plain; charset=utf-8", "WWW-Authenticate": 'Basic realm="gostash", charset="UTF-8"' },
      });
    }
    if (access === "ro" && req.method !== "GET" && req.method !== "HEAD") {
      onRefused?.("forbidden");
      return new Response("forbidden: the read-only token allows GET and HEAD only\n", {
        status: 403,
        headers: { "Content-Type": "text/plain; charset=utf-8", Allow: "GET, HEAD" },
      });
    }
    return next(req);
  };
}
