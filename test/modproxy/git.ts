// Private-module fixtures: a local git repository holding a Go module with
// tagged versions, and a git config that makes https://<host>/<path> point
// at such repositories (url.<file:///...>.insteadOf), given to gostash serve
// through GIT_CONFIG_GLOBAL so the go command it runs reaches them without
// any network. A module path ending in ".git" tells the go command the VCS
// and the repository root without a ?go-get=1 lookup.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { run } from "../helpers/env.ts";

/** Environment for git in the fixtures: no user or system config. */
export function gitEnv(home: string): Record<string, string> {
  return {
    HOME: home,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_AUTHOR_NAME: "gostash test",
    GIT_AUTHOR_EMAIL: "test@example.com",
    GIT_COMMITTER_NAME: "gostash test",
    GIT_COMMITTER_EMAIL: "test@example.com",
    GIT_TERMINAL_PROMPT: "0",
  };
}

async function git(args: string[], cwd: string, env: Record<string, string>): Promise<string> {
  const r = await run(["git", ...args], { cwd, env, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`git ${args.join(" ")} failed (${r.code}):\n${r.stderr}`);
  return r.stdout;
}

export interface GitVersion {
  tag: string;
  files: Record<string, string>;
}

/** A repository at `dir` with one commit and tag per version, in order (files accumulate). */
export async function makeGitModule(dir: string, versions: GitVersion[]): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const env = gitEnv(join(dir, ".."));
  await git(["init", "-q", "-b", "main", "."], dir, env);
  for (const v of versions) {
    for (const [name, text] of Object.entries(v.files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    await git(["add", "-A"], dir, env);
    await git(["commit", "-q", "-m", `release ${v.tag}`], dir, env);
    await git(["tag", v.tag], dir, env);
  }
}

/**
 * A git config file mapping each https URL prefix to a local URL
 * ({"https://private.example.com/team/lib": "file:///tmp/.../lib"}), with
 * the file protocol allowed.
 */
export function writeGitConfig(file: string, rewrites: Record<string, string>): void {
  let text = '[protocol "file"]\n\tallow = always\n';
  for (const [from, to] of Object.entries(rewrites)) text += `[url "${to}"]\n\tinsteadOf = ${from}\n`;
  writeFileSync(file, text);
}
