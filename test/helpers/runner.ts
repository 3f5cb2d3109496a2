// A simulated GitHub Actions runner for the action's real entry points
// (action/main.mjs, action/post.mjs) under node, the way the runner runs
// them: inputs as INPUT_<NAME>, the files GITHUB_ENV, GITHUB_PATH,
// GITHUB_STATE, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY, and state handed to
// the post step as STATE_<name>. Later steps get the exported variables and
// the added PATH entries, as on a runner.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { ROOT, type RunResult } from "./env.ts";

/** Runs a command with exactly env (nothing from the test process leaks into the job). */
export async function runClean(cmd: string[], cwd: string, env: Record<string, string>, timeoutMs = 600_000): Promise<RunResult> {
  const p = Bun.spawn(cmd, { cwd, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill(9), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Parses a runner file: NAME=value lines and NAME<<DELIM ... DELIM blocks. */
export function parseKeyValueFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const end = lines.indexOf(heredoc[2]!, i + 1);
      if (end < 0) throw new Error(`runner file: ${heredoc[1]}: no closing ${heredoc[2]}`);
      out[heredoc[1]!] = lines.slice(i + 1, end).join("\n");
      i = end;
    } else if (line.includes("=")) out[line.slice(0, line.indexOf("="))] = line.slice(line.indexOf("=") + 1);
  }
  return out;
}

export interface Job {
  root: string;
  workspace: string;
  /** The job's environment as the runner gives it to every step. */
  env: Record<string, string>;
  summary(): string;
  /** Variables exported so far (GITHUB_ENV). */
  exported(): Record<string, string>;
  state(): Record<string, string>;
  outputs(): Record<string, string>;
  /** The environment of a later `run:` step: job env + exported variables + added PATH entries. */
  stepEnv(): Record<string, string>;
  /** Runs one of the action's entry points (main or post) with these inputs. */
  action(entry: "main" | "post", inputs: Record<string, string>): Promise<RunResult>;
}

/** A fresh job in root (wiped first): a fresh runner machine whose paths are the same every time. */
export function newJob(root: string, base: Record<string, string>): Job {
  rmSync(root, { recursive: true, force: true });
  const dirs = { home: join(root, "home"), temp: join(root, "temp"), tools: join(root, "toolcache"), workspace: join(root, "work", "repo"), files: join(root, "files") };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  const file = (name: string) => join(dirs.files, name);
  for (const f of ["env", "path", "state", "output", "summary.md"]) writeFileSync(file(f), "");
  const env: Record<string, string> = {
    ...base,
    HOME: dirs.home,
    RUNNER_TEMP: dirs.temp,
    RUNNER_TOOL_CACHE: dirs.tools,
    GITHUB_WORKSPACE: dirs.workspace,
    GITHUB_ENV: file("env"),
    GITHUB_PATH: file("path"),
    GITHUB_STATE: file("state"),
    GITHUB_OUTPUT: file("output"),
    GITHUB_STEP_SUMMARY: file("summary.md"),
    GITHUB_ACTIONS: "true",
    CI: "true",
  };
  const read = (f: string) => readFileSync(file(f), "utf8");
  const job: Job = {
    root,
    workspace: dirs.workspace,
    env,
    summary: () => read("summary.md"),
    exported: () => parseKeyValueFile(read("env")),
    state: () => parseKeyValueFile(read("state")),
    outputs: () => parseKeyValueFile(read("output")),
    stepEnv() {
      const added = read("path").split("\n").filter(Boolean).reverse();
      return { ...env, ...job.exported(), PATH: [...added, env.PATH].join(delimiter) };
    },
    action(entry, inputs) {
      const inputEnv = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v]));
      const stateEnv = entry === "post" ? Object.fromEntries(Object.entries(job.state()).map(([k, v]) => [`STATE_${k}`, v])) : {};
      // The runner gives each step the job's environment plus what earlier steps exported.
      return runClean(["node", join(ROOT, "action", `${entry}.mjs`)], dirs.workspace, { ...job.stepEnv(), ...inputEnv, ...stateEnv });
    },
  };
  return job;
}
