// The compiled binary's stdin reader: input far larger than one read, so
// request lines are cut at read boundaries and the read buffer is reused.
import { expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { createDiskStore } from "../../src/store/disk.ts";
import { BIN, run, tempDir } from "../helpers/env.ts";

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

test("after answering close, stdout is closed before the exit; the --metrics summary still reaches stderr", async () => {
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
