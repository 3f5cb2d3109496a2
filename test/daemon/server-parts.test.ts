// The plugin server's parts, each on its own, with fake sockets: the auth
// handshake fed byte by byte, the writer under a socket that takes a few
// bytes at a time, the --max-inflight input, the idle watch, the read pause.
import { describe, expect, test } from "bun:test";
import { TokenChecker } from "../../src/auth/token.ts";
import { AuthHandshake, type HandshakeStep } from "../../src/daemon/server/auth-handshake.ts";
import { IdleWatch } from "../../src/daemon/server/limits.ts";
import { ReadPause } from "../../src/daemon/server/read-pause.ts";
import { SessionInput } from "../../src/daemon/server/session-input.ts";
import { ConnectionWriter, OUT_HIGH } from "../../src/daemon/server/writer.ts";
import { until } from "./helpers.ts";

const enc = new TextEncoder();
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const tokens = new TokenChecker({ token: "rw-tok", readToken: "ro-tok" });

/** Feeds s one byte at a time; returns every step that was not "wait", and the bytes passed on. */
function byteByByte(h: AuthHandshake, s: string): { steps: HandshakeStep[]; rest: string } {
  const steps: HandshakeStep[] = [];
  let rest = "";
  for (const b of enc.encode(s)) {
    const step = h.feed(new Uint8Array([b]));
    if (step.kind === "wait") continue;
    steps.push(step);
    if (step.kind !== "refused") rest += text(step.rest);
  }
  return { steps, rest };
}

describe("AuthHandshake", () => {
  test("token required, fed byte by byte: waits for the whole line, then authenticated with the right access", () => {
    for (const [tok, access] of [["rw-tok", "rw"], ["ro-tok", "ro"]] as const) {
      const h = new AuthHandshake(tokens, () => {});
      const { steps, rest } = byteByByte(h, `GOSTASH-AUTH ${tok}\n{"ID":1}`);
      expect(steps[0]).toMatchObject({ kind: "authenticated", access });
      expect(steps.slice(1).every((s) => s.kind === "passed")).toBe(true);
      expect(rest).toBe('{"ID":1}');
      expect(h.pending).toBe(false);
    }
  });

  test("token required: wrong token, missing token, no auth line, EOF first: each refused with its reason", () => {
    const why = (s: string, eof = false) => {
      const h = new AuthHandshake(tokens, () => {});
      const { steps } = byteByByte(h, s);
      const step = steps[0] ?? (eof ? h.end() : null);
      return step?.kind === "refused" ? step.why : step?.kind;
    };
    expect(why("GOSTASH-AUTH rw-to\n")).toBe("wrong token");
    expect(why("GOSTASH-AUTH rw-tok-and-more\n")).toBe("wrong token");
    expect(why('{"ID":1,"Command":"get"}\n')).toBe("missing token");
    expect(why("GOSTASH-AUTH \n")).toBe("missing token"); // a bridge with a hello and no token
    expect(why(`GOSTASH-AUTH ${"x".repeat(5000)}`)).toBe("no auth line (expected GOSTASH-AUTH <token>)");
    expect(why("GOSTASH-AU", true)).toBe("missing token");
    expect(why("GOSTASH-AUTH rw-tok\r\n")).toBe("authenticated"); // a CRLF line is fine
  });

  test("token required: no line within the timeout is refused once; a line in time disarms it", async () => {
    const late: HandshakeStep[] = [];
    new AuthHandshake(tokens, (s) => late.push(s), 30);
    const onTime: HandshakeStep[] = [];
    const h = new AuthHandshake(tokens, (s) => onTime.push(s), 30);
    h.feed(enc.encode("GOSTASH-AUTH rw-tok\n"));
    await until(() => late.length > 0, "the timeout");
    expect(late).toEqual([{ kind: "refused", why: "no auth line within 0.03s" }]);
    await Bun.sleep(60);
    expect(onTime).toEqual([]);
  });

  test("no token required, fed byte by byte: an auth line is skipped, anything else passes through untouched", () => {
    const skip = byteByByte(new AuthHandshake(null), `GOSTASH-AUTH whatever\n{"ID":7}\n`);
    expect(skip.rest).toBe('{"ID":7}\n');
    expect(skip.steps.every((s) => s.kind === "passed")).toBe(true);
    const plain = byteByByte(new AuthHandshake(null), `{"ID":1,"Command":"get"}\n`);
    expect(plain.rest).toBe(`{"ID":1,"Command":"get"}\n`);
    // "GO" could start an auth line; "GOX" cannot: the held bytes come back.
    const h = new AuthHandshake(null);
    expect(h.feed(enc.encode("G")).kind).toBe("wait");
    expect(h.feed(enc.encode("O")).kind).toBe("wait");
    const step = h.feed(enc.encode("X"));
    expect(step.kind === "passed" && text(step.rest)).toBe("GOX");
  });

  test("no token required: EOF after a short prefix gives the bytes back; an endless would-be auth line passes", () => {
    const h = new AuthHandshake(null);
    h.feed(enc.encode("GOST"));
    const end = h.end();
    expect(end.kind === "passed" && text(end.rest)).toBe("GOST");
    const long = new AuthHandshake(null);
    const step = long.feed(enc.encode(`GOSTASH-AUTH ${"y".repeat(5000)}`));
    expect(step.kind === "passed" && step.rest.length).toBe(13 + 5000);
  });
});

/** A socket whose kernel takes at most `take` bytes per write until told otherwise. */
class SlowSocket {
  got = "";
  ended = false;
  paused = false;
  writes = 0;
  constructor(public take: number) {}
  write(data: Uint8Array): number {
    this.writes++;
    const n = Math.min(this.take, data.length);
    this.got += text(data.subarray(0, n));
    return n;
  }
  end() {
    this.ended = true;
  }
  pause() {
    this.paused = true;
  }
  resume() {
    this.paused = false;
  }
}

describe("ConnectionWriter", () => {
  test("lines of one tick go out in one write; what the kernel does not take is resent on drain, in order", async () => {
    const sock = new SlowSocket(5);
    let sent = 0;
    const w = new ConnectionWriter(sock, new ReadPause(sock), () => sent++);
    const lines = Array.from({ length: 20 }, (_, i) => `{"ID":${i}}\n`);
    for (const l of lines) w.write(l);
    expect(sock.writes).toBe(0); // batched: nothing before the tick ends
    await Promise.resolve();
    expect(sock.writes).toBe(1);
    expect(sock.got).toBe(lines.join("").slice(0, 5));
    expect(w.empty).toBe(false);
    for (let i = 0; i < 1000 && !w.empty; i++) w.flush(); // drain events
    expect(sock.got).toBe(lines.join(""));
    expect(sent).toBeGreaterThan(1);
  });

  test("over OUT_HIGH waiting: reading pauses; once the backlog is out it resumes", async () => {
    const sock = new SlowSocket(0); // a client that does not read
    const w = new ConnectionWriter(sock, new ReadPause(sock), () => {});
    const line = `${"x".repeat(1023)}\n`;
    for (let i = 0; i * 1024 <= OUT_HIGH; i++) w.write(line);
    await Promise.resolve();
    expect(sock.paused).toBe(true);
    sock.take = 64 << 10;
    for (let i = 0; i < 100 && !w.empty; i++) w.flush();
    expect(w.empty).toBe(true);
    expect(sock.paused).toBe(false);
    expect(sock.got.length).toBe(Math.ceil((OUT_HIGH + 1) / 1024) * 1024);
  });

  test("endWhenFlushed ends the socket only after the last byte; discardBacklog drops what the kernel refused", async () => {
    const sock = new SlowSocket(3);
    const w = new ConnectionWriter(sock, new ReadPause(sock), () => {});
    w.write("abcdefgh\n");
    w.endWhenFlushed();
    await Promise.resolve();
    expect(sock.ended).toBe(false);
    w.flush();
    w.flush();
    expect(sock.got).toBe("abcdefgh\n");
    expect(sock.ended).toBe(true);

    const s2 = new SlowSocket(2);
    const w2 = new ConnectionWriter(s2, new ReadPause(s2), () => {});
    w2.write("0123456789\n");
    await Promise.resolve();
    w2.discardBacklog();
    w2.endWhenFlushed();
    await Promise.resolve();
    expect(s2.got).toBe("01");
    expect(s2.ended).toBe(true);
  });

  test("after close nothing is written", async () => {
    const sock = new SlowSocket(100);
    const w = new ConnectionWriter(sock, new ReadPause(sock), () => {});
    w.close();
    w.write("late\n");
    await Promise.resolve();
    w.flush();
    expect(sock.writes).toBe(0);
  });
});

describe("ReadPause", () => {
  test("paused while any reason holds; never touched after close", () => {
    const calls: string[] = [];
    const p = new ReadPause({ pause: () => calls.push("pause"), resume: () => calls.push("resume") });
    p.set("output", true);
    p.set("inflight", true);
    p.set("output", false);
    expect(calls).toEqual(["pause"]);
    p.set("inflight", false);
    expect(calls).toEqual(["pause", "resume"]);
    p.close();
    p.set("output", true);
    expect(calls).toEqual(["pause", "resume"]);
  });
});

/** A session that takes requests (one per line) while fewer than max are pending. */
class FakeSession {
  pending = 0;
  taken = "";
  constructor(private readonly max: number) {}
  push(chunk: Uint8Array): number {
    let n = 0;
    while (n < chunk.length) {
      if (this.pending >= this.max) break;
      const nl = chunk.indexOf(10, n);
      const end = nl < 0 ? chunk.length : nl + 1;
      this.taken += text(chunk.subarray(n, end));
      if (nl >= 0) this.pending++;
      n = end;
    }
    return n;
  }
}

describe("SessionInput (--max-inflight)", () => {
  test("input the session does not take is held, the socket paused, and fed in again as answers go out; EOF waits for it", () => {
    const session = new FakeSession(2);
    const pauses: boolean[] = [];
    let holds = 0;
    let ended = 0;
    const input = new SessionInput(session, 2, { set: (_r, on) => void pauses.push(on) }, {
      onHold: () => holds++,
      onBroken: () => {
        throw new Error("not broken");
      },
      onEnd: () => ended++,
    });
    const chunk = enc.encode("a\nb\nc\nd\n");
    input.push(chunk);
    chunk.fill(0x21); // the chunk's memory is not the input's to keep
    expect(session.taken).toBe("a\nb\n");
    expect(input.busy).toBe(true);
    expect(holds).toBe(1);
    input.push(enc.encode("e\n")); // read before the pause took: queued behind
    input.end();
    expect(ended).toBe(0);
    for (const want of ["a\nb\nc\n", "a\nb\nc\nd\n", "a\nb\nc\nd\ne\n"]) {
      session.pending--;
      input.settle();
      expect(session.taken).toBe(want);
    }
    expect(input.busy).toBe(false);
    expect(ended).toBe(1);
    expect(pauses).toEqual([true, false]);
    expect(holds).toBe(1);
  });

  test("a session that throws (broken framing): reported once, nothing more is fed", () => {
    let broken = 0;
    const input = new SessionInput(
      {
        pending: 0,
        push: () => {
          throw new Error("cacheprog: request is not JSON");
        },
      },
      0,
      { set: () => {} },
      { onHold: () => {}, onBroken: () => broken++, onEnd: () => {} },
    );
    input.push(enc.encode("x\n"));
    input.push(enc.encode("y\n"));
    expect(broken).toBe(1);
  });
});

describe("IdleWatch", () => {
  test("closes a quiet connection owed nothing; waits while it is owed something; traffic re-arms it", async () => {
    let busy = true;
    const closed: number[] = [];
    const w = new IdleWatch(30, () => busy, (q) => closed.push(q));
    await Bun.sleep(80);
    expect(closed).toEqual([]); // owed an answer: never idle
    busy = false;
    w.touch();
    await until(() => closed.length === 1, "the idle close");
    expect(closed[0]).toBeGreaterThanOrEqual(30);
    const stopped: number[] = [];
    const w2 = new IdleWatch(20, () => false, (q) => stopped.push(q));
    w2.stop();
    await Bun.sleep(50);
    expect(stopped).toEqual([]);
    w.stop();
  });
});
