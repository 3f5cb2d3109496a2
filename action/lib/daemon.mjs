// @ts-check
// The daemon's life in a job: started detached by the main step (so it
// outlives it), on loopback ports the OS picks (two jobs on one self-hosted
// runner never collide), its stderr to a log file; stopped by the post step
// with SIGTERM, which makes it wait for connected go commands and flush its
// pending uploads (--shutdown-timeout, --flush-timeout) before it exits.
//
// States: not started -> starting (waiting for its "plugin on ..., http on
// ..." line) -> running (healthz answers) -> stopping (SIGTERM sent) ->
// stopped (the process is gone). Any step that fails leaves it stopped.

import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";

const START_TIMEOUT_MS = 30_000;
/** --shutdown-timeout (30s) + --flush-timeout (30s) + margin. */
export const STOP_TIMEOUT_MS = 90_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The process exists and has not exited (a zombie whose parent has not reaped it yet counts as gone). */
export function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return /** @type {NodeJS.ErrnoException} */ (err).code === "EPERM";
  }
  if (process.platform !== "linux") return true;
  try {
    // /proc/<pid>/stat: "pid (comm) S ...": the state follows the last ")".
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

function readLog(path) {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/**
 * Starts `gostash serve`; resolves when it answers /healthz with its
 * addresses, or throws (the process is killed) with the log's last lines.
 */
export async function startDaemon(bin, { dir, env, modproxy }) {
  mkdirSync(dir, { recursive: true });
  const log = join(dir, "serve.log");
  const fd = openSync(log, "a");
  const args = ["serve", "--plugin=127.0.0.1:0", "--http=127.0.0.1:0", ...(modproxy ? ["--modproxy"] : [])];
  const child = spawn(bin, args, { detached: true, stdio: ["ignore", "ignore", fd], env, cwd: dir });
  closeSync(fd);
  child.unref();
  const pid = child.pid;
  if (!pid) throw new Error(`daemon: cannot start ${bin} serve`);
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const m = /gostash serve: plugin on ([^,\n]+), http on (https?:\/\/[^,\n]+)/.exec(readLog(log));
    if (m) {
      const http = m[2];
      if (await healthy(http)) return { pid, plugin: m[1], http, log };
    } else if (!alive(pid)) break;
    await sleep(100);
  }
  if (alive(pid)) process.kill(pid, "SIGKILL");
  throw new Error(`daemon: gostash serve did not start within ${START_TIMEOUT_MS / 1000}s: ${lastLines(readLog(log), 5) || "(no output)"}`);
}

async function healthy(http) {
  try {
    const r = await fetch(`${http}/healthz`, { signal: AbortSignal.timeout(2_000) });
    await r.text();
    return r.ok;
  } catch {
    return false;
  }
}

/**
 * GOCACHEPROG for the go command to reach the daemon. The go command splits
 * the value with cmd/internal/quoted: fields may be wrapped in single or
 * double quotes, with no escapes inside, so a path with spaces is quoted.
 */
export function goCacheProg(bin, plugin) {
  const quote = (s) => {
    if (!/[\s'"]/.test(s)) return s;
    if (!s.includes("'")) return `'${s}'`;
    if (!s.includes('"')) return `"${s}"`;
    throw new Error(`daemon: the path ${s} holds both kinds of quotes; GOCACHEPROG cannot name it`);
  };
  return `${quote(bin)} connect ${plugin}`;
}

export function lastLines(text, n) {
  return text.trim().split("\n").slice(-n).join("\n");
}

/**
 * SIGTERM, then waits for the process to be gone. Returns how it went: its
 * last log line ("gostash serve: stopped (SIGTERM, N upload(s) left)"), or
 * that it had to be killed.
 */
export async function stopDaemon(pid, log, timeoutMs = STOP_TIMEOUT_MS) {
  if (!alive(pid)) return { stopped: true, killed: false, line: lastLines(readLog(log), 1), wasRunning: false };
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + timeoutMs;
  while (alive(pid) && Date.now() < deadline) await sleep(200);
  let killed = false;
  if (alive(pid)) {
    process.kill(pid, "SIGKILL");
    killed = true;
  }
  return { stopped: true, killed, line: lastLines(readLog(log), 1), wasRunning: true };
}
