// @ts-check
// Installing the pinned release with the repository's own install.sh (it
// verifies the archive against SHA256SUMS and installs nothing otherwise).
// The tool cache keeps it between jobs on self-hosted runners: a binary
// that already reports the wanted version is used as it is.

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ACTION_ROOT } from "./settings.mjs";

const INSTALL_TIMEOUT_MS = 300_000;

/** The version a gostash binary reports, or null if it does not run. */
export function installedVersion(bin) {
  if (!existsSync(bin)) return null;
  try {
    const out = execFileSync(bin, ["version"], { encoding: "utf8", timeout: 30_000, stdio: ["ignore", "pipe", "pipe"] });
    return /^gostash (\S+)/.exec(out)?.[1] ?? null;
  } catch {
    return null;
  }
}

/**
 * Installs gostash `version` under the runner's tool cache (or temp
 * directory) unless it is already there; returns the binary's path.
 * Throws with install.sh's own message on failure.
 */
export function install(version, downloadURL) {
  const root = process.env.RUNNER_TOOL_CACHE || process.env.RUNNER_TEMP;
  if (!root) throw new Error("install: neither RUNNER_TOOL_CACHE nor RUNNER_TEMP is set");
  const prefix = join(root, "gostash", version, process.arch);
  const bin = join(prefix, "bin", process.platform === "win32" ? "gostash.exe" : "gostash");
  if (installedVersion(bin) === version) return { bin, fresh: false, log: `gostash ${version} already installed at ${bin}` };
  const args = [join(ACTION_ROOT, "scripts", "install.sh"), "--version", version, "--prefix", prefix, "--yes"];
  if (downloadURL) args.push("--url", downloadURL);
  // GITHUB_PATH is left out: the action adds the directory itself (also when nothing was installed).
  const env = { ...process.env, CI: "true", GITHUB_PATH: "" };
  const r = spawnSync("sh", args, { env, encoding: "utf8", timeout: INSTALL_TIMEOUT_MS, stdio: ["ignore", "pipe", "pipe"] });
  const log = `${r.stdout ?? ""}${r.stderr ?? ""}`.trim();
  if (r.error) throw new Error(`install: cannot run install.sh: ${r.error.message}`);
  if (r.status !== 0) {
    const why = log.split("\n").filter((l) => l.includes("error")).pop() ?? log.split("\n").pop() ?? "";
    throw new Error(`install: install.sh --version ${version} failed (exit ${r.status}): ${why}`);
  }
  const got = installedVersion(bin);
  if (got !== version) throw new Error(`install: ${bin} reports version ${got ?? "nothing (it does not run)"}, not ${version}`);
  return { bin, fresh: true, log };
}
