// @ts-check
// The action's main step: install, start the daemon, point later steps'
// go commands at it, content-derived mtimes for the checkout.
//
// Every step is tried in order and a failure stops the ones that need it,
// never the job: the problem is kept (state "problems") for the post step's
// summary and shown as a warning now. This step always exits 0.
//
//   install      -> bin          (needed by everything below)
//   daemon       -> plugin, http (needed by GOCACHEPROG and GOPROXY)
//   exports      GOCACHEPROG, GOPROXY (modproxy), GOSTASH_JOB
//   test-mtimes  independent of the daemon (needs bin only)

import { randomUUID } from "node:crypto";
import { spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { goCacheProg, startDaemon } from "./lib/daemon.mjs";
import { install } from "./lib/install.mjs";
import { addPath, exportVariable, group, info, saveState, setOutput, warning } from "./lib/runner.mjs";
import { daemonEnv, goproxyBefore, mtimesFailure, settings } from "./lib/settings.mjs";

/** @type {string[]} */
const problems = [];

function problem(what, err) {
  const message = `${what}: ${err instanceof Error ? err.message : String(err)}`;
  problems.push(message);
  warning(`${message} (the job goes on without it)`);
}

async function startAndExport(s, bin) {
  const dir = join(process.env.RUNNER_TEMP || dirname(bin), "gostash");
  const d = await startDaemon(bin, { dir, env: daemonEnv(s.readOnly), modproxy: s.modproxy });
  saveState("pid", String(d.pid));
  saveState("http", d.http);
  saveState("log", d.log);
  setOutput("http", d.http);
  exportVariable("GOCACHEPROG", goCacheProg(bin, d.plugin));
  if (s.modproxy) {
    // "|": any error from the daemon (gone, refusing) falls through to what the job had.
    exportVariable("GOPROXY", `${d.http}/mod|${goproxyBefore()}`);
  }
  info(`gostash: daemon ${d.pid} on ${d.plugin} (build cache) and ${d.http}${s.modproxy ? " (module proxy at /mod)" : ""}; ${s.readOnlyWhy}`);
}

function contentMtimes(s, bin) {
  const dir = resolve(process.env.GITHUB_WORKSPACE || ".", s.path);
  const r = spawnSync(bin, ["ci", "mtimes", dir], { encoding: "utf8", timeout: 600_000, stdio: ["ignore", "pipe", "pipe"] });
  const out = `${r.stderr ?? ""}`.trim();
  if (r.error) throw new Error(r.error.message);
  if (r.status !== 0) throw new Error(mtimesFailure(out, r.status));
  info(out);
}

async function main() {
  const s = settings();
  const jobID = randomUUID();
  saveState("job", jobID);
  // Records of this job's go commands carry it; `ci summary` selects them by it.
  exportVariable("GOSTASH_JOB", jobID);
  let bin = "";
  try {
    const r = install(s.version, s.downloadURL);
    bin = r.bin;
    if (r.log) group(`gostash ${s.version}: install`, r.log);
    addPath(dirname(bin));
    saveState("bin", bin);
    setOutput("version", s.version);
  } catch (err) {
    problem("gostash could not be installed", err);
  }
  if (bin) {
    try {
      await startAndExport(s, bin);
    } catch (err) {
      problem("gostash's daemon could not start (go commands build without it)", err);
    }
  }
  if (bin && s.testMtimes) {
    try {
      contentMtimes(s, bin);
    } catch (err) {
      problem("gostash ci mtimes: some files keep their checkout time (go test's cached results for them are not reused)", err);
    }
  }
}

try {
  await main();
} catch (err) {
  problem("gostash's setup failed", err);
}
try {
  saveState("problems", JSON.stringify(problems));
} catch (err) {
  warning(`gostash: cannot save the action's state: ${err instanceof Error ? err.message : err}`);
}
process.exitCode = 0;
