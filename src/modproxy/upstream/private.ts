// Private modules (--private, GOPRIVATE syntax: globs.ts): fetched straight
// from version control by running the go command with GOPROXY=direct, never
// asked of the upstream proxies. What it runs, per proxy request:
//
//   <module>/@v/list                 go list -m -json -versions -retracted <module>
//   <module>/@latest                 go list -m -json <module>@latest
//   <module>/@v/<query>.info         go list -m -json <module>@<query>
//   <module>/@v/<version>.info|.mod  go list -m -json <module>@<version>, then the file
//   <module>/@v/<version>.zip        go mod download -json <module>@<version>, then the file
//
// "The file" is read from the go command's own module cache (--private-modcache,
// reused across commands so repositories are cloned once), whose
// cache/download tree has the GOPROXY layout; a file already there is
// served without running anything. The answers go through the handler like
// any upstream answer: validated, stored, mirrored to the bucket, list and
// @latest kept for the list TTL. Offline mode never gets here.
//
// Every command runs with GOPROXY=direct GOSUMDB=off GOPRIVATE=<patterns>
// GOFLAGS="-mod=mod -modcacherw" (so the cache can be deleted), GOWORK=off,
// GOTOOLCHAIN=local, in an empty directory of its own (no go.mod applies),
// at most --private-concurrency at a time, one per module@version and
// operation however many clients ask, killed with all its children after
// --private-timeout (gocmd.ts). Credentials are the daemon's own (.netrc,
// git config, credential helpers, SSH agent): the environment is passed
// through, with GIT_TERMINAL_PROMPT=0 and (unless GIT_SSH_COMMAND or GIT_SSH
// is set) GIT_SSH_COMMAND="ssh -o BatchMode=yes", so nothing ever waits for
// a password. Errors become 404 (not found: unknown revision, no matching
// versions, ...) or 410 (anything else: authentication, network, timeout),
// never 5xx, so a client's GOPROXY list falls through; the message is the
// go command's, trimmed, with URL credentials ("https://user:pass@") and the
// daemon's own paths left out.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "../../util/log.ts";
import type { Metrics } from "../../util/metrics.ts";
import { Semaphore } from "../../util/semaphore.ts";
import { SingleFlight } from "../../util/singleflight.ts";
import type { ModuleRequest } from "../module/layout.ts";
import { PrefixPatterns } from "../module/globs.ts";
import { runCommand, type CommandResult } from "./gocmd.ts";
import { fetchUpstream, type FetchResult, type Upstream } from "./fetch.ts";

export interface PrivateConfig {
  /** Comma-separated GOPRIVATE-style globs. */
  patterns: string;
  /** GOMODCACHE of the go commands run here. */
  modcache: string;
  concurrency: number;
  timeoutMs: number;
  /** Environment for the go command instead of the daemon's own (tests). */
  env?: Record<string, string | undefined>;
}

export interface PrivateOptions extends PrivateConfig {
  metrics: Metrics;
  logger: Logger;
  /** The go command (default "go" from PATH). */
  goBin?: string;
}

export interface PrivateSource {
  /** The pattern that makes `module` private, or null when it is public. */
  match(module: string): string | null;
  fetch(r: ModuleRequest): Promise<FetchResult>;
}

const FROM = "go (direct)";
const MAX_MESSAGE = 2000;
// "unrecognized import path" is what a path prefix that is no module gets:
// clients resolving a package ask for every prefix of its path.
const NOT_FOUND =
  /unknown revision|invalid version|no matching versions|not found|does not exist|disallowed version|cannot find module|malformed module path|invalid pseudo-version|unrecognized import path/i;

/** "https://user:token@host" -> "https://***@host", wherever a URL appears. */
export function redactCredentials(s: string): string {
  return s.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, "$1***@");
}

/** The go command's error as clients and logs see it: no "go: " prefixes, no credentials, no daemon paths, bounded. */
export function cleanMessage(raw: string, modcache: string): string {
  let s = raw
    .split(modcache)
    .join("$GOMODCACHE")
    .replace(/^go: /gm, "")
    .replace(/\s+$/, "");
  s = redactCredentials(s);
  return s.length > MAX_MESSAGE ? `${s.slice(0, MAX_MESSAGE)}...` : s;
}

interface GoJSON {
  Version?: string;
  Versions?: string[];
  Time?: string;
  Origin?: unknown;
  Error?: string | { Err?: string };
}

type Outcome = { ok: true; json: GoJSON } | { ok: false; status: 404 | 410; message: string };

function fmtDuration(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function childEnv(o: PrivateOptions): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(o.env ?? process.env)) if (v !== undefined) env[k] = v;
  Object.assign(env, {
    GOPROXY: "direct",
    GONOPROXY: "",
    GOSUMDB: "off",
    GONOSUMDB: "",
    GONOSUMCHECK: "",
    // The go command allows every VCS for private paths (GOVCS default), and only git/hg for public ones.
    GOPRIVATE: o.patterns,
    GOFLAGS: "-mod=mod -modcacherw",
    GOMODCACHE: o.modcache,
    GOWORK: "off",
    GO111MODULE: "on",
    GOTOOLCHAIN: "local",
    // A GOCACHEPROG in the daemon's environment could point at this very daemon.
    GOCACHEPROG: "",
    GIT_TERMINAL_PROMPT: "0",
    GCM_INTERACTIVE: "never",
  });
  // GIT_SSH_COMMAND beats GIT_SSH and core.sshCommand: only a default, never an override of the daemon's own.
  if (!env.GIT_SSH_COMMAND && !env.GIT_SSH) env.GIT_SSH_COMMAND = "ssh -o BatchMode=yes";
  return env;
}

/** What running the go command needs, made once per source. */
interface GoRunner {
  o: PrivateOptions;
  goBin: string;
  env: Record<string, string>;
  slots: Semaphore;
}

/** The go command's answer: its JSON on success, else 404 (not found) or 410 (anything else), counted and logged. */
function outcomeOf(g: GoRunner, res: CommandResult, what: string, subject: string): Outcome {
  const { metrics, logger } = g.o;
  if (res.timedOut) {
    metrics.inc("modproxy_private_failures");
    metrics.inc("modproxy_private_timeouts");
    const message = `${what}: no answer within ${fmtDuration(g.o.timeoutMs)} (--private-timeout); killed`;
    logger.warn(`modproxy: ${message}`);
    return { ok: false, status: 410, message };
  }
  let json: GoJSON | null = null;
  try {
    json = JSON.parse(res.stdout) as GoJSON;
  } catch {
    json = null;
  }
  const jsonError = typeof json?.Error === "string" ? json.Error : json?.Error?.Err;
  if (res.code === 0 && json && !jsonError) return { ok: true, json };
  let message = cleanMessage(jsonError || res.stderr || `${what}: exit status ${res.code ?? "killed"}`, g.o.modcache);
  // Some errors ("no secure protocol found for repository") do not say which module.
  if (!message.includes(subject.split("@")[0]!)) message = `${subject}: ${message}`;
  if (NOT_FOUND.test(message)) {
    metrics.inc("modproxy_private_not_found");
    logger.debug(`modproxy: ${what}: ${message}`);
    return { ok: false, status: 404, message: `not found: ${message}` };
  }
  metrics.inc("modproxy_private_failures");
  logger.warn(`modproxy: ${what}: ${message}`);
  return { ok: false, status: 410, message };
}

/** Runs `go args` in an empty directory of its own, within the concurrency bound. */
function runGo(g: GoRunner, args: string[], subject: string): Promise<Outcome> {
  const { metrics, logger } = g.o;
  return g.slots.run(async () => {
    const cwd = mkdtempSync(join(tmpdir(), "gostash-private-"));
    const t0 = performance.now();
    let res: CommandResult;
    try {
      res = await runCommand([g.goBin, ...args], { cwd, env: g.env, timeoutMs: g.o.timeoutMs });
    } catch (err) {
      metrics.inc("modproxy_private_failures");
      const message = `private modules: cannot run the go command (${g.goBin}): ${(err as Error).message}`;
      logger.warn(`modproxy: ${message}`);
      return { ok: false, status: 410, message };
    } finally {
      rmSync(cwd, { recursive: true, force: true });
      metrics.inc("modproxy_private_fetches");
      metrics.observe("modproxy_private_seconds", (performance.now() - t0) / 1000);
    }
    return outcomeOf(g, res, `go ${args.join(" ")}`, subject);
  });
}

export function createPrivateSource(o: PrivateOptions): PrivateSource {
  const { metrics } = o;
  const g: GoRunner = { o, goBin: o.goBin ?? "go", env: childEnv(o), slots: new Semaphore(Math.max(1, o.concurrency)) };
  const patterns = new PrefixPatterns(o.patterns);
  const flights = new SingleFlight<Outcome>();
  const download = join(o.modcache, "cache", "download");
  // The go command's download cache has the GOPROXY layout: read it as a file:// upstream.
  const modcacheUp: Upstream[] = [{ url: `file://${download}`, dir: download, next: null }];
  const fileOpts = { timeoutMs: o.timeoutMs, retries: 0 };

  /** One command per key at a time; concurrent askers share its outcome. */
  function once(key: string, subject: string, args: string[]): Promise<Outcome> {
    return flights.do(`${key} ${subject}`, () => runGo(g, args, subject)).promise;
  }

  function text(body: string): FetchResult {
    const data = new TextEncoder().encode(body);
    return { ok: true, status: 200, body: new Response(data).body!, size: data.length, from: FROM };
  }

  function info(json: GoJSON): FetchResult {
    const out: GoJSON = { Version: json.Version, Time: json.Time };
    if (json.Origin) out.Origin = json.Origin;
    return text(`${JSON.stringify(out)}\n`);
  }

  /** A file of the go command's download cache, if it is there. */
  async function fromModcache(rel: string): Promise<FetchResult | null> {
    const r = await fetchUpstream(modcacheUp, rel, fileOpts);
    return r.ok ? { ...r, from: FROM } : null;
  }

  return {
    match: (module) => patterns.match(module),

    async fetch(r) {
      if (r.kind === "list") {
        const out = await once("list", r.module, ["list", "-m", "-json", "-versions", "-retracted", r.module]);
        if (!out.ok) return { ...out, from: FROM };
        const versions = out.json.Versions ?? [];
        return text(versions.map((v) => `${v}\n`).join(""));
      }
      const version = r.kind === "latest" ? "latest" : r.version;
      const stat = () => once("stat", `${r.module}@${version}`, ["list", "-m", "-json", `${r.module}@${version}`]);
      if (r.kind === "latest" || !r.canonical) {
        const out = await stat();
        return out.ok ? info(out.json) : { ...out, from: FROM };
      }
      const rel = `${r.escModule}/@v/${r.escVersion}.${r.file}`;
      const have = await fromModcache(rel);
      if (have) {
        metrics.inc("modproxy_private_modcache_hits");
        return have;
      }
      const zip = () => once("zip", `${r.module}@${version}`, ["mod", "download", "-json", `${r.module}@${version}`]);
      // .info and .mod need no zip: `go list -m` writes both, without making one.
      let out = r.file === "zip" ? await zip() : await stat();
      if (!out.ok) return { ...out, from: FROM };
      let got = await fromModcache(rel);
      if (!got && r.file !== "zip") {
        out = await zip();
        if (!out.ok) return { ...out, from: FROM };
        got = await fromModcache(rel);
      }
      return got ?? { ok: false, status: 410, message: `private modules: the go command found ${r.module}@${version} but wrote no .${r.file} file`, from: FROM };
    },
  };
}
