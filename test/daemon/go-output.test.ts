// The bridge's stdout towards `go` (src/daemon/bridge/go-output.ts) with a
// fake fd: a full non-blocking stdout (EAGAIN), a `go` that went away
// (EPIPE), and the early release after close is answered.
import { describe, expect, test } from "bun:test";
import { GoOutput } from "../../src/daemon/bridge/go-output.ts";
import { until } from "./helpers.ts";

const enc = new TextEncoder();

function fakeStdout(room: number) {
  const s = {
    room,
    got: "",
    released: false,
    events: [] as string[],
    write(b: Uint8Array): number {
      const n = Math.min(s.room, b.length);
      s.got += new TextDecoder().decode(b.subarray(0, n));
      s.room -= n;
      return n;
    },
  };
  return s;
}

describe("GoOutput", () => {
  test("stdout full: the rest is queued (copied), the daemon paused, the write retried; then resumed, in order", async () => {
    const fd = fakeStdout(4);
    const out = new GoOutput(
      { blocked: () => fd.events.push("pause"), unblocked: () => fd.events.push("resume"), broken: () => fd.events.push("broken") },
      (b) => fd.write(b),
      () => (fd.released = true),
    );
    const first = enc.encode('{"ID":1}\n');
    out.write(first);
    first.fill(0x21); // the caller's memory is not kept
    out.write(enc.encode('{"ID":2}\n'));
    let drained = false;
    out.whenDrained(() => (drained = true));
    expect(fd.events).toEqual(["pause"]);
    expect(drained).toBe(false);
    fd.room = 1 << 20;
    await until(() => drained, "the retry");
    expect(fd.got).toBe('{"ID":1}\n{"ID":2}\n');
    expect(fd.events).toEqual(["pause", "resume"]);
  });

  test("stdout is released once the answer to close is out, not before", async () => {
    const fd = fakeStdout(3);
    const out = new GoOutput({ blocked() {}, unblocked() {}, broken() {} }, (b) => fd.write(b), () => (fd.released = true));
    out.markCloseAnswered();
    out.write(enc.encode('{"ID":9}\n'));
    out.releaseIfAnswered();
    expect(fd.released).toBe(false); // still queued
    fd.room = 100;
    await until(() => fd.released, "the release");
    expect(fd.got).toBe('{"ID":9}\n');
    out.write(enc.encode("late\n"));
    expect(fd.got).toBe('{"ID":9}\n'); // nothing after the release
  });

  test("go gone (a write throws): broken once, nothing more written, drained at once", () => {
    let broken = 0;
    let writes = 0;
    const out = new GoOutput(
      { blocked() {}, unblocked() {}, broken: () => broken++ },
      () => {
        writes++;
        throw Object.assign(new Error("EPIPE"), { code: "EPIPE" });
      },
      () => {},
    );
    out.write(enc.encode("a\n"));
    out.write(enc.encode("b\n"));
    expect(broken).toBe(1);
    expect(writes).toBe(1);
    expect(out.broken).toBe(true);
    let ran = false;
    out.whenDrained(() => (ran = true));
    expect(ran).toBe(true);
  });
});
