// Which CI job a go command belongs to, and which go command it is, so the
// records of one job can be told from the records of the jobs before it
// (self-hosted runners keep the cache directory between jobs).

import { readFileSync } from "node:fs";

/**
 * The job's identity from the environment every step of a job shares:
 * GOSTASH_JOB (the GitHub Action sets a fresh one per job; set it yourself
 * elsewhere), else GitHub's run, attempt and job, else GitLab's job ID.
 * Null outside CI: `ci summary` then selects records by time (--since).
 */
export function jobID(env: Record<string, string | undefined> = process.env): string | null {
  if (env.GOSTASH_JOB) return env.GOSTASH_JOB;
  if (env.GITHUB_RUN_ID) return `github:${env.GITHUB_REPOSITORY ?? ""}:${env.GITHUB_RUN_ID}:${env.GITHUB_RUN_ATTEMPT ?? "1"}:${env.GITHUB_JOB ?? ""}`;
  if (env.CI_JOB_ID) return `gitlab:${env.CI_PROJECT_PATH ?? ""}:${env.CI_JOB_ID}`;
  return null;
}

/**
 * The command line of the process that started us (the go command, in
 * plugin and connect mode), where the OS shows it without running anything:
 * /proc on Linux. Null elsewhere, or if the parent is gone.
 */
export function parentCommandLine(): string[] | null {
  if (process.platform !== "linux") return null;
  try {
    const argv = readFileSync(`/proc/${process.ppid}/cmdline`, "latin1").split("\0");
    if (argv.at(-1) === "") argv.pop();
    return argv.length ? argv.map((a) => Buffer.from(a, "latin1").toString("utf8")) : null;
  } catch {
    return null;
  }
}

/** "go test ./..." from a go command's argv: the program's base name, then the arguments. */
export function shortCommand(argv: string[] | null): string {
  if (!argv || argv.length === 0) return "go (command line not available)";
  const prog = argv[0]!.split(/[\\/]/).pop() ?? argv[0]!;
  const line = [prog, ...argv.slice(1)].join(" ");
  return line.length > 120 ? `${line.slice(0, 117)}...` : line;
}

/** Flags of the go command whose values may hold anything: secrets in `-ldflags -X`, a wrapper's arguments. */
const OPAQUE_FLAGS = new Set(["-ldflags", "-gcflags", "-asmflags", "-gccgoflags", "-toolexec", "-exec", "-overlay"]);

/**
 * shortCommand for others to read (the daemon's status page, through
 * connect's hello; `ci summary`'s job summary): the values of flags that may hold anything are ***, and
 * so is everything after `go test`'s -args. Null when the line is not known.
 */
export function shownCommand(argv: string[] | null): string | null {
  if (!argv || argv.length === 0) return null;
  const out = [argv[0]!];
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-args" || a === "--args") {
      out.push(a, "***");
      break;
    }
    const eq = a.indexOf("=");
    const name = (eq < 0 ? a : a.slice(0, eq)).replace(/^--/, "-");
    if (!OPAQUE_FLAGS.has(name)) out.push(a);
    else {
      out.push(`${eq < 0 ? a : a.slice(0, eq)}=***`);
      if (eq < 0) i++; // its value is the next argument
    }
  }
  return shortCommand(out);
}

/** The go subcommand (build, test, vet, ...) in a go command's argv, or null. */
export function goSubcommand(argv: string[] | null): string | null {
  if (!argv) return null;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-C" || a === "--C") i++; // the one flag the go command takes before its subcommand, with a value
    else if (!a.startsWith("-")) return a;
  }
  return null;
}
