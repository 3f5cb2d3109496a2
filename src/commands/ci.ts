// `gostash ci mtimes [DIR]` and `gostash ci summary`: the CI helpers.
//
//   mtimes   content-derived modification times for the files git tracks,
//            so cached `go test` results survive fresh checkouts
//            (src/ci/mtimes.ts)
//   summary  Markdown of what gostash did in this job, per go command, to
//            $GITHUB_STEP_SUMMARY or stdout (src/ci/summary.ts)
//
// Both report on stderr and exit 1 with one line naming what went wrong.

import { defineCommand } from "citty";
import { CiError } from "../ci/git.ts";
import { ciFlags, localFlags } from "../config/options.ts";
import { readFlags, toCittyArgs } from "../config/flags.ts";
import { writeStderr } from "../util/std-output.ts";
import { noSubcommand } from "../cli/subcommand.ts";

/** citty drops a nested subcommand's result: it leaves its exit status here and `ci` returns it. */
let status: number | undefined;

function fail(err: unknown): number {
  if (err instanceof CiError) writeStderr(`gostash: ${err.message}\n`);
  else writeStderr(`gostash: ci: ${(err as Error)?.stack ?? err}\n`);
  return 1;
}

const mtimesSpecs = {};

const mtimesCommand = defineCommand({
  meta: {
    name: "mtimes",
    description:
      "Set every file git tracks under DIR to a modification time derived from its content, so go test results stay cached across fresh checkouts",
  },
  args: {
    dir: { type: "positional", required: false, valueHint: "dir", description: "A directory in a git work tree [default: .]" },
    ...toCittyArgs(mtimesSpecs),
  },
  async run({ args, rawArgs }) {
    readFlags(rawArgs, mtimesSpecs, 1);
    const { setContentMtimes, formatMtimesReport } = await import("../ci/mtimes-report.ts");
    try {
      const report = setContentMtimes(typeof args.dir === "string" && args.dir ? args.dir : ".");
      writeStderr(formatMtimesReport(report));
      status = report.failed.length ? 1 : 0;
    } catch (err) {
      status = fail(err);
    }
    return status;
  },
});

const summarySpecs = { "cache-dir": localFlags["cache-dir"], ...ciFlags };

const summaryCommand = defineCommand({
  meta: {
    name: "summary",
    description:
      "Markdown of what gostash did in this CI job, per go command: hits, misses, time saved, bucket bytes, slowest misses, module proxy; to $GITHUB_STEP_SUMMARY or stdout",
  },
  args: toCittyArgs(summarySpecs),
  async run({ rawArgs }) {
    // A bad command line is a usage error (exit 2, the help pointer: cli/errors.ts), not a failed summary.
    const flags = readFlags(rawArgs, summarySpecs);
    try {
      const { writeJobSummary } = await import("../ci/summary-command.ts");
      status = await writeJobSummary(flags);
    } catch (err) {
      status = fail(err);
    }
    return status;
  },
});

export default defineCommand({
  meta: { name: "ci", description: "CI helpers: content-derived file times for the test cache (mtimes), a job summary (summary)" },
  subCommands: { mtimes: mtimesCommand, summary: summaryCommand },
  run() {
    // Set by the subcommand that ran; none ran when the user named none.
    return status ?? noSubcommand("ci", ["mtimes", "summary"]);
  },
});
