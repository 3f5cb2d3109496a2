// @ts-check
// The action's post step (runs even when the job failed): the job summary,
// then the daemon stopped with its uploads flushed, then what went wrong.
//
// The summary is taken while the daemon still runs (its per-go-command
// records live in it); how the stop went (uploads flushed or left) is
// appended after. Problems from the main step (state "problems") and from
// here go into the summary and as warnings. This step always exits 0.

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { lastLines, stopDaemon } from "./lib/daemon.mjs";
import { appendSummary, getState, group, info, warning } from "./lib/runner.mjs";

/** @type {string[]} */
const problems = [];

function problem(what, err) {
  problems.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
}

function summary(bin, http) {
  const args = ["ci", "summary", ...(http ? [`--http=${http}`] : [])];
  const env = { ...process.env, GOSTASH_JOB: getState("job") || process.env.GOSTASH_JOB || "" };
  const r = spawnSync(bin, args, { env, encoding: "utf8", timeout: 60_000, stdio: ["ignore", "pipe", "pipe"] });
  if (r.error) throw new Error(r.error.message);
  if (r.status !== 0) throw new Error(lastLines(r.stderr ?? "", 1) || `exit ${r.status}`);
  // Without a step summary file the Markdown came to stdout: show it in the log.
  if (!process.env.GITHUB_STEP_SUMMARY && r.stdout) info(r.stdout);
}

async function stop(pid, log) {
  const s = await stopDaemon(pid, log);
  if (!s.wasRunning) {
    problem("gostash's daemon had already exited before the end of the job (uploads since then are lost)", lastLines(s.line, 1) || "no log");
    return "";
  }
  if (s.killed) {
    problem("gostash's daemon did not stop in time and was killed", "uploads still pending were lost");
    return "";
  }
  const left = /(\d+) upload\(s\) left/.exec(s.line);
  if (left) problem("gostash's daemon stopped with uploads left", `${left[1]} outputs were not uploaded to the bucket`);
  return left ? "" : "Daemon stopped; every upload was flushed to the bucket.";
}

function problemsMarkdown() {
  return ["", "#### ⚠️ gostash: what went wrong (the job was not failed for it)", "", ...problems.map((p) => `- ${p}`), ""].join("\n");
}

async function post() {
  try {
    problems.push(...JSON.parse(getState("problems") || "[]"));
  } catch {
    problems.push("the main step's state could not be read");
  }
  const bin = getState("bin");
  const http = getState("http");
  const pid = Number(getState("pid"));
  const log = getState("log");
  if (bin) {
    try {
      summary(bin, http);
    } catch (err) {
      problem("gostash ci summary failed", err);
    }
  } else appendSummary("### gostash: not used in this job\n");
  let stopped = "";
  if (pid > 0) {
    try {
      stopped = await stop(pid, log);
    } catch (err) {
      problem("stopping gostash's daemon failed", err);
    }
    if (log) {
      try {
        group("gostash: daemon log", lastLines(readFileSync(log, "utf8"), 200));
      } catch {
        // no log to show
      }
    }
  }
  if (stopped) appendSummary(`${stopped}\n`);
  if (problems.length) {
    appendSummary(problemsMarkdown());
    for (const p of problems) warning(p);
  }
}

try {
  await post();
} catch (err) {
  warning(`gostash's post step failed: ${err instanceof Error ? err.message : err}`);
}
process.exitCode = 0;
