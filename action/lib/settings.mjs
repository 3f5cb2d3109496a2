// @ts-check
// The action's inputs turned into what the steps need: which release, the
// daemon's environment (the same variables `gostash serve` reads), and
// whether this job may write to the bucket.

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { boolInput, input } from "./runner.mjs";

/** Where the action's own files are (the repository at the ref users pin). */
export const ACTION_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The release this action's ref belongs to: the version in its package.json. */
export function ownVersion() {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
  return String(pkg.version);
}

/** Pull request events whose code comes from the pull request's head. */
const PR_EVENTS = new Set(["pull_request", "pull_request_target", "pull_request_review", "pull_request_review_comment"]);

/**
 * read-only = auto: a pull request from a fork reads the bucket but never
 * writes to it (its code is not trusted to fill a cache others build from).
 * Returns [read-only?, why].
 */
export function readOnlyDecision(value = input("read-only").toLowerCase() || "auto", env = process.env) {
  if (value === "true") return [true, "read-only: true"];
  if (value === "false") return [false, "read-only: false"];
  if (value !== "auto") throw new Error(`input read-only: expected auto, true or false, got ${JSON.stringify(value)}`);
  if (!PR_EVENTS.has(env.GITHUB_EVENT_NAME ?? "")) return [false, `read-only: auto, event ${env.GITHUB_EVENT_NAME ?? "unknown"}`];
  let event = {};
  try {
    event = JSON.parse(readFileSync(env.GITHUB_EVENT_PATH ?? "", "utf8"));
  } catch {
    return [true, "read-only: auto, pull request whose event payload cannot be read (treated as a fork)"];
  }
  const head = event?.pull_request?.head?.repo?.full_name;
  const base = event?.pull_request?.base?.repo?.full_name ?? env.GITHUB_REPOSITORY;
  const fork = !head || head !== base;
  return [fork, `read-only: auto, pull request from ${fork ? `a fork (${head ?? "deleted repository"})` : "this repository"}`];
}

/** The daemon's environment: the job's, plus the S3 settings given as inputs. */
export function daemonEnv(readOnly, env = process.env) {
  const out = { ...env };
  const set = (name, value) => {
    if (value !== "") out[name] = value;
  };
  set("GOCACHE_S3_BUCKET", input("bucket"));
  set("GOCACHE_S3_REGION", input("region"));
  set("GOCACHE_KEY_PREFIX", input("prefix"));
  set("GOCACHE_S3_ENDPOINT_URL", input("endpoint"));
  if (boolInput("path-style", false)) out.GOCACHE_S3_PATH_STYLE = "true";
  out.GOSTASH_READ_ONLY = readOnly ? "true" : "false";
  return out;
}

export function settings() {
  const [readOnly, readOnlyWhy] = readOnlyDecision();
  return {
    version: (input("version") || ownVersion()).replace(/^v/, ""),
    downloadURL: input("download-url"),
    readOnly,
    readOnlyWhy,
    modproxy: boolInput("modproxy", true),
    testMtimes: boolInput("test-mtimes", true),
    path: input("path") || ".",
  };
}

/**
 * The GOPROXY the job's go commands use without the action: the
 * environment's, else what `go env` says (a `go env -w GOPROXY=...`, or the
 * toolchain's go.env: the action's export would hide either), else Go's
 * default. The module proxy falls through to it.
 */
export function goproxyBefore(env = process.env) {
  if (env.GOPROXY) return env.GOPROXY;
  const r = spawnSync("go", ["env", "GOPROXY"], { env, encoding: "utf8", timeout: 30_000, stdio: ["ignore", "pipe", "ignore"] });
  const fromGo = r.status === 0 ? `${r.stdout}`.trim() : "";
  return fromGo || "https://proxy.golang.org,direct";
}

/**
 * What a failed `gostash ci mtimes` said, for the warning: its first line
 * (how many files could not be set, or what stopped it) and the next (the
 * first of those files and why). Its last line may be "... and N more",
 * which names no cause.
 */
export function mtimesFailure(stderr, status) {
  return stderr.split("\n").filter(Boolean).slice(0, 2).join(" / ") || `exit ${status}`;
}

