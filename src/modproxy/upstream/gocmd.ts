// Runs one command (the go command, for private modules: private.ts) to
// completion, with a deadline that cannot be escaped:
//
//   - the child starts its own process group (setsid), so on timeout one
//     SIGKILL to the group also ends the git, ssh and credential helpers the
//     go command started, which would otherwise keep running (and keep our
//     pipes open) after the go command itself died
//   - its exit is always awaited (no zombies), and after a kill the group is
//     given a moment to disappear before the result is returned
//   - stdin is closed, so nothing can wait for a password typed there
//   - groups still running when the daemon exits are killed on the way out
//     (they are in their own session: the terminal's ^C does not reach them)
//
// Output is kept up to a cap and the rest is drained, so a chatty child can
// neither block on a full pipe nor fill our memory. A descendant that still
// holds the output pipes shortly after the go command exited is killed with
// the group rather than waited for.

const OUTPUT_CAP = 4 << 20;
const PIPE_GRACE_MS = 2000;

export interface CommandResult {
  /** Exit status; null when killed by a signal. */
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface CommandOptions {
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
}

const liveGroups = new Set<number>();
let exitHookInstalled = false;

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // ESRCH: the whole group is gone already.
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const pid of liveGroups) killGroup(pid);
  });
}

async function drain(stream: ReadableStream<Uint8Array>): Promise<string> {
  const dec = new TextDecoder();
  let out = "";
  let kept = 0;
  for await (const chunk of stream) {
    if (kept >= OUTPUT_CAP) continue;
    const part = chunk.subarray(0, OUTPUT_CAP - kept);
    kept += part.length;
    out += dec.decode(part, { stream: true });
  }
  return out + dec.decode();
}

/** Runs cmd; rejects only when it cannot be started at all (e.g. not installed). */
export async function runCommand(cmd: string[], o: CommandOptions): Promise<CommandResult> {
  installExitHook();
  const p = Bun.spawn(cmd, { cwd: o.cwd, env: o.env, stdin: "ignore", stdout: "pipe", stderr: "pipe", detached: true });
  liveGroups.add(p.pid);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(p.pid);
  }, o.timeoutMs);
  try {
    const output = Promise.all([drain(p.stdout), drain(p.stderr)]);
    const code = await p.exited;
    // A helper left behind by the go command (one that kept our pipes) would
    // hold the answer until the deadline: it gets a moment, then the kill.
    let grace: ReturnType<typeof setTimeout> | undefined;
    const drained = await Promise.race([output.then(() => true), new Promise<boolean>((r) => (grace = setTimeout(() => r(false), PIPE_GRACE_MS)))]);
    clearTimeout(grace);
    if (!drained) killGroup(p.pid);
    const [stdout, stderr] = await output;
    if (timedOut) {
      // Members of the group may outlive the leader by a moment; a kill is
      // sent again in case one forked after the first.
      killGroup(p.pid);
      for (let i = 0; i < 40 && groupAlive(p.pid); i++) await Bun.sleep(50);
    }
    return { code: p.signalCode ? null : code, stdout, stderr, timedOut };
  } finally {
    clearTimeout(timer);
    liveGroups.delete(p.pid);
  }
}
