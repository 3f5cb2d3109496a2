// Flags of `gostash ci summary` (src/commands/ci.ts), a group of
// options.ts (re-exported there, so cli-args.ts knows which take a value).

import type { FlagSpecs } from "./flags.ts";

export const ciFlags = {
  http: {
    type: "string",
    env: ["GOCACHE_HTTP"],
    valueHint: "[host]:port|url",
    description: "The daemon's --http address, to include what it served (its go commands, bucket and module proxy counters)",
  },
  token: {
    type: "string",
    env: ["GOSTASH_TOKEN"],
    valueHint: "token",
    description: "Token the daemon requires on HTTP (serve --token or --read-token)",
  },
  job: {
    type: "string",
    env: ["GOSTASH_JOB"],
    valueHint: "id",
    defaultText: "GitHub's run and job, or GitLab's job ID",
    description: "Summarise the go commands run with this job ID in their environment",
  },
  since: {
    type: "duration",
    default: "1h",
    env: ["GOSTASH_SUMMARY_SINCE"],
    valueHint: "duration",
    description: "Outside CI (no job ID): summarise the go commands that started this long ago or later",
  },
  out: {
    type: "string",
    env: ["GITHUB_STEP_SUMMARY"],
    valueHint: "file",
    description: "Append the Markdown to this file (GitHub Actions sets GITHUB_STEP_SUMMARY); stdout when unset",
  },
} satisfies FlagSpecs;
