// The compiled binary's stdin reader: input far larger than one read, so
// request lines are cut at read boundaries and the read buffer is reused.
import { expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { runLogPath } from "../../src/ci/runlog.ts";
import { createDiskStore } from "../../src/store/disk.ts";
import { BIN, run, tempDir } from "../helpers/env.ts";
import { startS3Server } from "../helpers/s3server.ts";

test("20,000 gets written at once: every one answered, in order, nothing else on stdout", async () => {
  const t = tempDir("gostash-stdio-");
  try {
    const n = 20_000;
    let input = "";
    for (let id = 1; id <= n; id++) input += `${JSON.stringify({ ID: id, Command: "get", ActionID: randomBytes(32).toString("base64") })}\n\n`;
    input += `${JSON.stringify({ ID: n + 1, Command: "close" })}\n\n`;
    const r = await run([BIN], { env: { ...process.env, GOCACHE: t.path, GOCACHEPROG: "" }, stdin: input, timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as { ID: number; Miss?: boolean });
    expect(lines.length).toBe(n + 2); // the capability line, the gets, close
    expect(lines[0]!.ID).toBe(0);
    const ids = lines.slice(1).map((l) => l.ID);
    expect(ids).toEqual(Array.from({ length: n + 1 }, (_, i) => i + 1));
    expect(lines.slice(1, -1).every((l) => l.Miss === true)).toBe(true);
  } finally {
    t.cleanup();
  }
}, 90_000);

test("after answering close, the --metrics summary still reaches stderr (stdout is closed by then: the test further down)", async () => {
  const t = tempDir("gostash-stdio-close-");
  try {
    const input = `${JSON.stringify({ ID: 1, Command: "get", ActionID: randomBytes(32).toString("base64") })}\n\n${JSON.stringify({ ID: 2, Command: "close" })}\n\n`;
    const r = await run([BIN, "--metrics"], { env: { ...process.env, GOCACHE: t.path, GOCACHEPROG: "" }, stdin: input, timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l).ID)).toEqual([0, 1, 2]);
    expect(r.stderr).toMatch(/gets 1\b/);
  } finally {
    t.cleanup();
  }
}, 60_000);

test("the plugin trims the cache like Go after the session: old entries go, used ones stay, trim.txt is written", async () => {
  const t = tempDir("gostash-stdio-trim-");
  try {
    const s = createDiskStore({ dir: t.path });
    const ids = [randomBytes(32).toString("hex"), randomBytes(32).toString("hex")];
    const hits = ids.map((a) => {
      const w = s.put(a, randomBytes(32).toString("hex"), 3);
      w.write(new Uint8Array([1, 2, 3]));
      return w.commit();
    });
    const sixDays = new Date(Date.now() - 6 * 86400_000 - 2 * 3600_000);
    for (const p of [join(t.path, ids[0]!.slice(0, 2), `${ids[0]}-a`), hits[0]!.diskPath]) utimesSync(p, sixDays, sixDays);
    const b64 = (hex: string) => Buffer.from(hex, "hex").toString("base64");
    const input = `${JSON.stringify({ ID: 1, Command: "get", ActionID: b64(ids[1]!) })}\n\n${JSON.stringify({ ID: 2, Command: "close" })}\n\n`;
    const r = await run([BIN], { env: { ...process.env, GOCACHE: t.path, GOCACHEPROG: "" }, stdin: input, timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trimEnd().split("\n")[1]!).DiskPath).toBe(hits[1]!.diskPath);
    expect(existsSync(hits[0]!.diskPath)).toBe(false);
    expect(existsSync(join(t.path, ids[0]!.slice(0, 2), `${ids[0]}-a`))).toBe(false);
    expect(existsSync(hits[1]!.diskPath)).toBe(true);
    expect(Math.abs(Number(readFileSync(join(t.path, "trim.txt"), "latin1")) - Date.now() / 1000)).toBeLessThan(120);
  } finally {
    t.cleanup();
  }
}, 60_000);

/**
 * Answers a get (a miss) and then close, and looks at the plugin process
 * the moment its stdout ends: `go` stops waiting there, so the plugin must
 * still be at the work that follows the session. It is held there for
 * sure: its run log (ci/runlog.ts, written after the session) is a FIFO
 * here, whose open blocks until the test reads it.
 */
async function aliveAtStdoutEnd(env: Record<string, string | undefined>, runLog: string): Promise<{ alive: boolean; code: number; stderr: string; record: string }> {
  const p = Bun.spawn([BIN], { env, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const reader = p.stdout.getReader();
  let stdout = "";
  const readUntil = async (done: () => boolean) => {
    while (!done()) {
      const { value, done: end } = await reader.read();
      if (end) return;
      stdout += new TextDecoder().decode(value);
    }
  };
  // The get alone first: its answer (a miss that asked the bucket, when there is one) is out before close is sent.
  p.stdin.write(`${JSON.stringify({ ID: 1, Command: "get", ActionID: randomBytes(32).toString("base64") })}\n\n`);
  await p.stdin.flush();
  await readUntil(() => stdout.includes(`"ID":1`));
  p.stdin.write(`${JSON.stringify({ ID: 2, Command: "close" })}\n\n`);
  await p.stdin.flush();
  // A plugin that keeps stdout open until its exit never gets there while its run log waits for us.
  const ended = readUntil(() => false).then(() => true);
  const endedInTime = await Promise.race([ended, Bun.sleep(10_000).then(() => false)]);
  let state = "gone";
  try {
    state = endedInTime ? readFileSync(`/proc/${p.pid}/stat`, "latin1").split(") ")[1]!.charAt(0) : "still waiting for stdout to end";
  } catch {
    // exited and reaped already
  }
  // Let it go on: read its run record off the FIFO.
  const cat = Bun.spawn(["cat", runLog], { stdout: "pipe" });
  await ended;
  const [stderr, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  if (cat.exitCode === null) setTimeout(() => cat.kill(), 2_000); // a plugin that never wrote its record
  const record = await new Response(cat.stdout).text();
  expect(stdout.trimEnd().split("\n").map((l) => JSON.parse(l).ID)).toEqual([0, 1, 2]);
  return { alive: endedInTime && state !== "gone" && state !== "Z", code, stderr, record };
}

test("stdout ends with the close answer, before the work after the session: on blocking stdin reads, and once a bucket's answers moved reading to the event loop", async () => {
  const s3 = await startS3Server();
  const t = tempDir("gostash-stdio-release-");
  try {
    for (const [name, extra] of [["local", {}], ["bucket", s3.env]] as const) {
      const dir = join(t.path, name);
      mkdirSync(dir, { recursive: true });
      const runLog = runLogPath(dir);
      expect((await run(["mkfifo", runLog])).code).toBe(0);
      const r = await aliveAtStdoutEnd({ ...process.env, GOCACHEPROG: "", GOCACHE: dir, ...extra }, runLog);
      expect(r.code, r.stderr).toBe(0);
      expect(r.alive, `${name}: stdout did not end before the plugin's work after the session (or it had exited when stdout ended)`).toBe(true);
      expect(JSON.parse(r.record).counters.gets).toBe(1); // and the record was written after the session
    }
  } finally {
    t.cleanup();
    await s3.stop();
  }
}, 120_000);
