// The compiled binary's stdin reader: input far larger than one read, so
// request lines are cut at read boundaries and the read buffer is reused.
import { expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
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

/** n entries (action + output file) in Go's layout, unused for a week: a due trim removes them all. */
function oldEntries(dir: string, n: number): void {
  const week = new Date(Date.now() - 7 * 86400_000);
  for (let i = 0; i < n; i++) {
    const [a, o] = [randomBytes(32).toString("hex"), randomBytes(32).toString("hex")];
    mkdirSync(join(dir, a.slice(0, 2)), { recursive: true });
    mkdirSync(join(dir, o.slice(0, 2)), { recursive: true });
    const files: [string, string][] = [
      [join(dir, a.slice(0, 2), `${a}-a`), `v1 ${a} ${o} 3 ${Date.now()}000000\n`],
      [join(dir, o.slice(0, 2), `${o}-d`), "abc"],
    ];
    for (const [p, body] of files) {
      writeFileSync(p, body);
      utimesSync(p, week, week);
    }
  }
}

const countEntries = (dir: string) => readdirSync(dir).filter((d) => /^[0-9a-f]{2}$/.test(d)).reduce((n, d) => n + readdirSync(join(dir, d)).length, 0);

/**
 * Answers get (a miss) and close, and looks at the plugin process the
 * moment its stdout ends: `go` stops waiting there, so the plugin must
 * still be busy with what comes after the session (here Go's daily trim of
 * thousands of old entries), not already gone.
 */
async function aliveAtStdoutEnd(env: Record<string, string | undefined>): Promise<{ alive: boolean; code: number; stderr: string }> {
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
  await readUntil(() => false);
  let state = "gone";
  try {
    state = readFileSync(`/proc/${p.pid}/stat`, "latin1").split(") ")[1]!.charAt(0);
  } catch {
    // exited and reaped already
  }
  const stderr = await new Response(p.stderr).text();
  const code = await p.exited;
  expect(stdout.trimEnd().split("\n").map((l) => JSON.parse(l).ID)).toEqual([0, 1, 2]);
  return { alive: state !== "gone" && state !== "Z", code, stderr };
}

test("stdout ends with the close answer, before the trim that follows it: on blocking stdin reads, and once a bucket's answers moved reading to the event loop", async () => {
  const s3 = await startS3Server();
  const t = tempDir("gostash-stdio-release-");
  try {
    for (const [name, extra] of [["local", {}], ["bucket", s3.env]] as const) {
      const dir = join(t.path, name);
      oldEntries(dir, 4000);
      expect(countEntries(dir)).toBeGreaterThan(7000);
      const env = { ...process.env, GOCACHEPROG: "", GOCACHE: dir, ...extra };
      const r = await aliveAtStdoutEnd(env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.alive, `${name}: the plugin had exited when its stdout ended`).toBe(true);
      expect(countEntries(dir)).toBe(0); // and the trim did run, after the session
    }
  } finally {
    t.cleanup();
    await s3.stop();
  }
}, 120_000);
