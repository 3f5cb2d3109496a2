// The compiled binary's stdin reader: input far larger than one read, so
// request lines are cut at read boundaries and the read buffer is reused.
import { expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
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
