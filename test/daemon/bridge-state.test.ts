// The bridge's state machine (src/daemon/bridge/state-machine.ts) driven
// in-process: fake daemon links, a scripted stdin, a captured stdout. The
// fake links report their close from inside terminate(), as Bun's sockets
// may: a bridge that terminated a link it still counted would dial again.
import { describe, expect, test } from "bun:test";
import { LineAssembler } from "../../src/cacheprog/framing.ts";
import type { CacheHandler } from "../../src/cacheprog/session.ts";
import type { Link, LinkEvents } from "../../src/daemon/bridge/daemon-link.ts";
import { Bridge } from "../../src/daemon/bridge/state-machine.ts";
import { StallWatch } from "../../src/daemon/bridge/stall-watch.ts";
import { daemonCapabilityLine } from "../../src/daemon/hello.ts";
import type { DiskMark } from "../../src/daemon/disk-mark.ts";
import { LocalHits } from "../../src/daemon/bridge/local-hits.ts";
import type { Hit } from "../../src/cacheprog/protocol.ts";
import { until } from "./helpers.ts";

/** The capability line of a daemon that reads hellos and offers no disk. */
const DAEMON_CAPABILITY_LINE = daemonCapabilityLine({ hello: true, disk: null });

const enc = new TextEncoder();
const CAP = '{"ID":0,"KnownCommands":["get","put","close"]}\n';
const id32 = (n: number) => Buffer.alloc(32, n).toString("base64");
const get = (id: number, action = id) => `{"ID":${id},"Command":"get","ActionID":"${id32(action)}"}\n\n`;
const close = (id: number) => `{"ID":${id},"Command":"close"}\n\n`;
const put = (id: number, body: string) =>
  `{"ID":${id},"Command":"put","ActionID":"${id32(id)}","OutputID":"${id32(id + 100)}","BodySize":${body.length}}\n\n"${Buffer.from(body).toString("base64")}"\n`;

/** A daemon connection the test answers for. */
class FakeLink implements Link {
  closed = false;
  readonly lines = new LineAssembler();
  sent = "";
  shutDown = false;
  constructor(private readonly events: LinkEvents) {}
  async send(bytes: Uint8Array, wanted: () => boolean): Promise<boolean> {
    if (!wanted() || this.closed) return false;
    this.sent += Buffer.from(bytes).toString("latin1");
    return true;
  }
  pause() {}
  resume() {}
  shutdown() {
    this.shutDown = true;
  }
  end() {}
  terminate() {
    this.hangUp(); // synchronously, as Bun may
  }
  /** The daemon writes. */
  say(text: string) {
    this.events.data(this, enc.encode(text));
  }
  /** The daemon hangs up. */
  hangUp() {
    if (this.closed) return;
    this.closed = true;
    this.events.close(this);
  }
}

/** A local cache in memory, for takeovers. */
function memoryCache(): CacheHandler {
  const entries = new Map<string, { outputID: string; size: number }>();
  return {
    get: (a) => {
      const e = entries.get(a);
      return e ? { ...e, timeNanos: 0n, diskPath: `/local/${a}` } : null;
    },
    put: (a, o, size) => ({
      write() {},
      commit: () => (entries.set(a, { outputID: o, size }), `/local/${a}`),
      abort() {},
    }),
    close() {},
  };
}

interface Harness {
  bridge: Bridge;
  links: FakeLink[];
  /** stdout as `go` sees it. */
  out: () => string;
  lines: () => string[];
  stderr: string[];
  released: () => boolean;
  push(text: string): void;
  end(): void;
  /** Starts the bridge; resolves with the exit code. */
  run(): Promise<number>;
  /** The n-th link (from 1), once it has been sent something. */
  sentTo(n: number): Promise<FakeLink>;
  /** go's EOF: waits for the half-close on link, then the daemon hangs up. */
  endVia(link: FakeLink): Promise<void>;
}

/**
 * dial(n) decides the n-th dial (from 1): a link, or an error (the daemon
 * is down). The first dial must succeed.
 */
function harness(
  opts: {
    capabilityPrinted?: boolean;
    token?: string;
    hello?: string;
    helloWaitMs?: number;
    answerTimeoutMs?: number;
    down?: (n: number) => boolean;
    localHits?: (disk: DiskMark) => LocalHits | null;
  } = {},
): Harness {
  const links: FakeLink[] = [];
  let out = "";
  let released = false;
  const stderr: string[] = [];
  let input!: ReadableStreamDefaultController<Uint8Array>;
  const stream = new ReadableStream<Uint8Array>({ start: (c) => void (input = c) });
  const bridge = new Bridge(
    { where: "fake.sock", capabilityPrinted: opts.capabilityPrinted ?? true, token: opts.token ?? null, hello: opts.hello ? { line: opts.hello, waitMs: opts.helloWaitMs ?? 2000 } : null, answerTimeoutMs: opts.answerTimeoutMs, openLocal: async () => ({ handler: memoryCache(), where: "/local" }), localHits: opts.localHits },
    {
      dial: async (events) => {
        if (opts.down?.(links.length + 1)) {
          links.push(null as unknown as FakeLink);
          throw new Error("connection refused");
        }
        const l = new FakeLink(events);
        links.push(l);
        return l;
      },
      input: () => stream,
      stderr: (t) => void stderr.push(t),
      writeOut: (b) => ((out += Buffer.from(b).toString("utf8")), b.length),
      releaseOut: () => void (released = true),
    },
  );
  return {
    bridge,
    links,
    out: () => out,
    lines: () => out.split("\n").filter(Boolean),
    stderr,
    released: () => released,
    push: (t) => input.enqueue(enc.encode(t)),
    end: () => input.close(),
    async run() {
      await bridge.start();
      void bridge.pumpStdin();
      return bridge.exit;
    },
    async sentTo(n) {
      await until(() => links.length >= n && links[n - 1]!.sent.length > 0, `dial ${n} and its first bytes`);
      return links[n - 1]!;
    },
    async endVia(link) {
      input.close();
      await until(() => link.shutDown, "the half-close");
      link.hangUp();
    },
  };
}

const ids = (lines: string[]) => lines.map((l) => JSON.parse(l).ID as number);

describe("bridge state machine", () => {
  test("bridging: requests out, answers back; the daemon's capability line is dropped when ours went out; EOF half-closes", async () => {
    const h = harness();
    const exit = h.run();
    await until(() => h.links.length === 1, "the dial");
    const l = h.links[0]!;
    h.push(get(1) + close(2));
    await until(() => l.sent.includes('"close"'), "the requests");
    expect(l.sent).toBe(get(1) + close(2));
    l.say(`${CAP}{"ID":1,"Miss":true}\n{"ID":2}`);
    l.say("\n");
    expect(ids(h.lines())).toEqual([1, 2]);
    expect(h.released()).toBe(true); // go waits for stdout's EOF after close is answered
    await h.endVia(l);
    expect(await exit).toBe(0);
    expect(h.links.length).toBe(1);
    expect(h.stderr).toEqual([]);
  });

  test("with a token, every connection starts with the auth line", async () => {
    const h = harness({ token: "t0k" });
    void h.run();
    await until(() => h.links.length === 1, "the dial");
    h.push(get(1));
    await until(() => h.links[0]!.sent.includes('"get"'), "the request");
    expect(h.links[0]!.sent).toBe(`GOSTASH-AUTH t0k\n${get(1)}`);
  });

  const HELLO = 'GOSTASH-HELLO {"GOVERSION":"go1.26.0","GOOS":"linux","GOARCH":"amd64"}\n';

  test("a hello goes to a daemon whose capability line takes one: after the auth line, before go's bytes, on every connection", async () => {
    const h = harness({ token: "t0k", hello: HELLO });
    const exit = h.run();
    await until(() => h.links.length === 1, "the dial");
    h.push(get(1));
    await Bun.sleep(20);
    // go's request waits for the daemon's capability line.
    expect(h.links[0]!.sent).toBe("GOSTASH-AUTH t0k\n");
    h.links[0]!.say(DAEMON_CAPABILITY_LINE);
    await until(() => h.links[0]!.sent.includes('"get"'), "the request");
    expect(h.links[0]!.sent).toBe(`GOSTASH-AUTH t0k\n${HELLO}${get(1)}`);
    h.links[0]!.hangUp(); // get 1 unanswered: dialled again, and replayed after a hello
    await until(() => h.links.length === 2 && h.links[1]!.sent.length > 0, "the redial");
    await Bun.sleep(20);
    expect(h.links[1]!.sent).toBe("GOSTASH-AUTH t0k\n");
    h.links[1]!.say(DAEMON_CAPABILITY_LINE);
    await until(() => h.links[1]!.sent.includes('"get"'), "the replay");
    expect(h.links[1]!.sent).toBe(`GOSTASH-AUTH t0k\n${HELLO}${get(1)}`);
    h.links[1]!.say('{"ID":1,"Miss":true}\n');
    h.push(close(2));
    await until(() => h.links[1]!.sent.endsWith(close(2)), "the close");
    h.links[1]!.say('{"ID":2}\n');
    await h.endVia(h.links[1]!);
    expect(await exit).toBe(0);
    expect(h.lines()).toEqual(['{"ID":1,"Miss":true}', '{"ID":2}']); // neither capability line reached go
    expect(h.stderr).toEqual([]);
  });

  test("a daemon whose capability line does not take a hello (an older one) is never sent one", async () => {
    const h = harness({ hello: HELLO });
    const exit = h.run();
    await until(() => h.links.length === 1, "the dial");
    h.push(get(1));
    h.links[0]!.say(CAP);
    await until(() => h.links[0]!.sent.includes('"get"'), "the request");
    // No token, but an (empty) auth line all the same: a daemon that wants a token refuses at once, not after its timeout.
    expect(h.links[0]!.sent).toBe(`GOSTASH-AUTH \n${get(1)}`);
    h.links[0]!.say('{"ID":1,"Miss":true}\n');
    await h.endVia(h.links[0]!);
    expect(await exit).toBe(0);
    expect(ids(h.lines())).toEqual([1]);
  });

  test("refused while the hello waits for the capability line: no hello, the local cache answers", async () => {
    const h = harness({ token: "bad", hello: HELLO });
    const exit = h.run();
    await until(() => h.links.length === 1, "the dial");
    h.push(get(1));
    h.links[0]!.say("GOSTASH-ERROR unauthorized: wrong token\n");
    h.push(close(2));
    h.end();
    expect(await exit).toBe(0);
    expect(h.links[0]!.sent).toBe("GOSTASH-AUTH bad\n");
    expect(ids(h.lines())).toEqual([1, 2]);
    expect(h.stderr[0]).toContain("refused this client (unauthorized: wrong token)");
  });

  test("a daemon that accepts but says nothing (stopped): unreachable after the wait, at the start and at a redial", async () => {
    const first = harness({ hello: HELLO, helloWaitMs: 50 });
    await expect(first.run()).rejects.toThrow("it said nothing within 50 ms of the connection");
    await until(() => first.links[0]?.closed === true, "the silent link hung up");
    const h = harness({ hello: HELLO, helloWaitMs: 50 });
    const exit = h.run();
    await until(() => h.links.length === 1, "the dial");
    h.links[0]!.say(CAP);
    h.push(get(1));
    await until(() => h.links[0]!.sent.includes('"get"'), "the request");
    h.links[0]!.hangUp(); // get 1 unanswered: the redial meets a daemon that says nothing
    await until(() => h.stderr.length > 0, "the takeover");
    expect(h.stderr[0]).toContain("dialling it again failed: it said nothing within 50 ms of the connection");
    expect(h.links[1]!.closed).toBe(true);
    h.push(close(2));
    h.end();
    expect(await exit).toBe(0);
    expect(ids(h.lines())).toEqual([1, 2]);
  });

  test("a daemon that stops answering (--answer-timeout): the local cache answers what it owed and the rest; one line says why", async () => {
    const h = harness({ answerTimeoutMs: 60 });
    const exit = h.run();
    await until(() => h.links.length === 1, "the dial");
    h.push(get(1) + get(2));
    await until(() => h.links[0]!.sent.includes(get(2)), "the requests");
    // Slow but answering: an answer within the timeout restarts its clock (80 ms in all, no takeover yet).
    await Bun.sleep(40);
    h.links[0]!.say(`${CAP}{"ID":1,"Miss":true}\n`);
    await Bun.sleep(40);
    expect(h.stderr).toEqual([]);
    await until(() => h.stderr.length > 0, "the takeover");
    expect(h.stderr[0]).toContain("the daemon at fake.sock stopped answering (nothing for 0.");
    expect(h.stderr[0]).toContain("with 1 request(s) unanswered; --answer-timeout)");
    expect(h.links[0]!.closed).toBe(true);
    h.push(close(3));
    h.end();
    expect(await exit).toBe(0);
    expect(ids(h.lines())).toEqual([1, 2, 3]);
    expect(h.links.length).toBe(1); // not dialled again: a stuck daemon accepts and says nothing
  });

  test("a long put on its way to a daemon that takes its bytes is not a stall, however long it takes", async () => {
    const h = harness({ answerTimeoutMs: 60 });
    const exit = h.run();
    await until(() => h.links.length === 1, "the dial");
    const p = put(1, "x".repeat(3000));
    for (let i = 0; i < p.length; i += 500) {
      h.push(p.slice(i, i + 500));
      await Bun.sleep(25); // 7 pieces: 175 ms in all, nothing said by the daemon
    }
    await until(() => h.links[0]!.sent === p, "the put");
    expect(h.stderr).toEqual([]);
    h.links[0]!.say(`${CAP}{"ID":1,"DiskPath":"/d/1"}\n`);
    await h.endVia(h.links[0]!);
    expect(await exit).toBe(0);
    expect(ids(h.lines())).toEqual([1]);
  });

  test("refused (busy): the line never reaches go, one dial only, the local cache answers everything", async () => {
    const h = harness();
    const exit = h.run();
    h.push(get(1));
    await h.sentTo(1);
    h.links[0]!.say("GOSTASH-ERROR busy: too many connections\n");
    h.push(close(2));
    h.end();
    expect(await exit).toBe(0);
    expect(h.links.length).toBe(1);
    expect(h.links[0]!.closed).toBe(true);
    expect(h.out()).not.toContain("GOSTASH");
    expect(ids(h.lines())).toEqual([1, 2]);
    expect(h.stderr.length).toBe(1);
    expect(h.stderr[0]).toContain("warning: the daemon at fake.sock refused this client (busy: too many connections)");
  });

  test("an idle close with nothing owed: nothing said, dialled again only when go sends its next request, no replay", async () => {
    const h = harness();
    const exit = h.run();
    h.push(get(1));
    await h.sentTo(1);
    h.links[0]!.say(`${CAP}{"ID":1,"Miss":true}\n`);
    h.links[0]!.hangUp(); // a redial would call dial() synchronously from here
    await Bun.sleep(0);
    expect(h.links.length).toBe(1); // not before it is needed
    h.push(get(2));
    await h.sentTo(2);
    expect(h.links[1]!.sent).toBe(get(2));
    h.links[1]!.say(`${CAP}{"ID":2,"Miss":true}\n`);
    await h.endVia(h.links[1]!);
    expect(await exit).toBe(0);
    expect(ids(h.lines())).toEqual([1, 2]);
    expect(h.stderr).toEqual([]);
  });

  test("a daemon that stopped while idle: said to have gone away when go next asks (not an 'idle connection'), the local cache answers", async () => {
    const h = harness({ down: (n) => n > 1 });
    const exit = h.run();
    h.push(get(1));
    await h.sentTo(1);
    h.links[0]!.say(`${CAP}{"ID":1,"Miss":true}\n`);
    h.links[0]!.hangUp();
    await Bun.sleep(0);
    expect(h.stderr).toEqual([]); // nothing is owed: nothing to say yet
    h.push(get(2) + close(3));
    h.end();
    expect(await exit).toBe(0);
    expect(ids(h.lines())).toEqual([1, 2, 3]);
    expect(h.stderr.length).toBe(1);
    expect(h.stderr[0]).toContain(
      "the daemon at fake.sock went away (it closed the connection while no request was pending; dialling it again failed: connection refused)",
    );
    expect(h.stderr[0]).not.toContain("idle");
  });

  test("a hang-up with requests unanswered: dials again at once and replays them in order, a put cut in half included", async () => {
    const h = harness();
    const exit = h.run();
    await until(() => h.links.length === 1, "the dial");
    const p = put(3, "hello, world");
    h.push(get(1) + get(2) + p.slice(0, 150));
    await until(() => h.links[0]!.sent.length === get(1).length + get(2).length + 150, "the requests");
    h.links[0]!.say(`${CAP}{"ID":1,"Miss":true}\n`);
    h.links[0]!.hangUp();
    await h.sentTo(2);
    expect(h.links[1]!.sent).toBe(get(2) + p.slice(0, 150));
    h.push(p.slice(150) + close(4));
    await until(() => h.links[1]!.sent.endsWith(close(4)), "the rest");
    expect(h.links[1]!.sent).toBe(get(2) + p + close(4));
    h.links[1]!.say(`${CAP}{"ID":2,"Miss":true}\n{"ID":3,"DiskPath":"/d/3"}\n{"ID":4}\n`);
    await h.endVia(h.links[1]!);
    expect(await exit).toBe(0);
    expect(ids(h.lines())).toEqual([1, 2, 3, 4]);
    expect(h.stderr).toEqual([]);
  });

  test("the daemon gone at the redial: the local cache takes over and answers what was unanswered, then the rest", async () => {
    const h = harness({ down: (n) => n > 1 });
    const exit = h.run();
    h.push(put(1, "abc") + get(2));
    await h.sentTo(1);
    h.links[0]!.hangUp();
    await until(() => h.stderr.length > 0, "the takeover");
    h.push(get(3, 1) + close(4));
    h.end();
    expect(await exit).toBe(0);
    expect(h.links.length).toBe(2);
    const answers = new Map(h.lines().map((l) => [JSON.parse(l).ID, JSON.parse(l)]));
    expect(answers.get(1).DiskPath).toBe(`/local/${Buffer.alloc(32, 1).toString("hex")}`);
    expect(answers.get(2).Miss).toBe(true);
    expect(answers.get(3).Size).toBe(3); // the replayed put landed in the local cache
    expect(answers.get(4)).toEqual({ ID: 4 });
    expect(h.stderr.length).toBe(1);
    expect(h.stderr[0]).toContain(
      "the daemon at fake.sock went away (it closed the connection with 2 request(s) unanswered; dialling it again failed: connection refused) before the go command was done; finishing this build from the local cache /local",
    );
  });

  test("go's input ends inside a put (go killed mid-put): no redial replays the half put; exit 1 with one line", async () => {
    const h = harness();
    const exit = h.run();
    const p = put(3, "a body go never finished");
    h.push(get(1) + p.slice(0, p.length - 8));
    const l = await h.sentTo(1);
    await h.endVia(l); // the daemon hangs up on the cut stream
    expect(await exit).toBe(1);
    expect(h.links.length).toBe(1);
    expect(h.stderr).toEqual(["gostash connect: go's input ended in the middle of a request; stopping\n"]);
  });

  test("a daemon that keeps hanging up without answering: given up after MAX_REDIALS dials, the local cache takes over", async () => {
    const h = harness();
    const exit = h.run();
    h.push(get(1));
    for (let n = 1; n <= 4; n++) (await h.sentTo(n)).hangUp();
    await until(() => h.stderr.length > 0, "the takeover");
    h.push(close(2));
    h.end();
    expect(await exit).toBe(0);
    expect(h.links.length).toBe(4); // the first dial and three more
    expect(ids(h.lines())).toEqual([1, 2]);
  });

  test("capability: go sees exactly one, whichever connection it comes from", async () => {
    const h = harness({ capabilityPrinted: false });
    const exit = h.run();
    await until(() => h.links.length === 1, "the dial");
    h.links[0]!.say(CAP);
    h.push(get(1));
    (await h.sentTo(1)).hangUp();
    await h.sentTo(2);
    h.links[1]!.say(`${CAP}{"ID":1,"Miss":true}\n`);
    await h.endVia(h.links[1]!);
    expect(await exit).toBe(0);
    expect(h.lines()).toEqual([CAP.trim(), '{"ID":1,"Miss":true}']);
  });

  test("taking over before go saw a capability line: the takeover sends it", async () => {
    const h = harness({ capabilityPrinted: false });
    const exit = h.run();
    await until(() => h.links.length === 1, "the dial");
    h.links[0]!.say("GOSTASH-ERROR unauthorized: wrong token\n");
    h.push(close(1));
    h.end();
    expect(await exit).toBe(0);
    expect(h.lines()).toEqual([CAP.trim(), '{"ID":1}']);
    expect(h.stderr[0]).toContain("error: the daemon at fake.sock refused this client (unauthorized: wrong token); check --token");
  });

  test("a request stream that is not GOCACHEPROG: when the daemon hangs up on it, exit 1 with one line, no takeover", async () => {
    const h = harness();
    const exit = h.run();
    h.push("this is not json\n\n");
    await h.sentTo(1);
    h.links[0]!.hangUp();
    expect(await exit).toBe(1);
    expect(h.links.length).toBe(1);
    expect(h.stderr).toEqual(["gostash connect: the daemon at fake.sock closed the connection; the request stream was not valid\n"]);
  });

  test("go gone (stdout EPIPE): exit 1 and the link is hung up", async () => {
    const links: FakeLink[] = [];
    let input!: ReadableStreamDefaultController<Uint8Array>;
    const bridge = new Bridge(
      { where: "fake.sock", capabilityPrinted: true, token: null, openLocal: async () => ({ handler: memoryCache(), where: "/local" }) },
      {
        dial: async (events) => (links.push(new FakeLink(events)), links.at(-1)!),
        input: () => new ReadableStream({ start: (c) => void (input = c) }),
        stderr: () => {},
        writeOut: () => {
          throw Object.assign(new Error("EPIPE"), { code: "EPIPE" });
        },
        releaseOut: () => {},
      },
    );
    await bridge.start();
    void bridge.pumpStdin();
    await until(() => input !== undefined, "stdin opened");
    input.enqueue(enc.encode(get(1)));
    await until(() => links[0]!.sent.length > 0, "the request");
    links[0]!.say('{"ID":1,"Miss":true}\n');
    expect(await bridge.exit).toBe(1);
    expect(links[0]!.closed).toBe(true);
    expect(links.length).toBe(1);
  });
});

describe("local hits: the bridge answers from the daemon's disk itself", () => {
  const DISK: DiskMark = { dir: "/daemon/cache", mark: "5eed" };
  const OFFER = daemonCapabilityLine({ hello: false, disk: DISK });
  /** A disk holding actions 1 and 3 (by the byte their ID is made of). */
  const onDisk = (disk: DiskMark) => {
    if (disk.dir !== DISK.dir || disk.mark !== DISK.mark) return null;
    return new LocalHits({
      get: (a): Hit | null => ([1, 3].includes(parseInt(a.slice(0, 2), 16)) ? { outputID: a.replace(/^../, "ee"), size: 7, timeNanos: 5n, diskPath: `/daemon/cache/${a}` } : null),
    });
  };
  const daemonHit = (id: number) => `{"ID":${id},"OutputID":"${id32(0xdd)}","Size":7,"Time":"1970-01-01T00:00:00.000000005Z","DiskPath":"/daemon/says/${id}"}\n`;

  test("a hit is answered at once and still sent to the daemon, whose answer is dropped; a miss is the daemon's to answer", async () => {
    const h = harness({ localHits: onDisk });
    const exit = h.run();
    await until(() => h.links.length === 1, "the dial");
    const l = h.links[0]!;
    l.say(OFFER);
    h.push(get(1) + get(2) + get(3));
    await until(() => l.sent.length === (get(1) + get(2) + get(3)).length, "the gets");
    expect(l.sent).toBe(get(1) + get(2) + get(3)); // the daemon sees every get
    expect(ids(h.lines())).toEqual([1, 3]); // before the daemon said anything
    const mine = JSON.parse(h.lines()[0]!);
    expect(mine.DiskPath).toBe(`/daemon/cache/${Buffer.alloc(32, 1).toString("hex")}`);
    expect(Buffer.from(mine.OutputID, "base64").toString("hex")).toBe(`ee${Buffer.alloc(31, 1).toString("hex")}`);
    // The daemon answers all three, out of order, in one chunk: only the miss reaches go.
    l.say(`${daemonHit(3)}{"ID":2,"Miss":true}\n${daemonHit(1)}`);
    expect(ids(h.lines())).toEqual([1, 3, 2]);
    expect(h.out()).not.toContain("/daemon/says/");
    h.push(close(4));
    await until(() => l.sent.includes('"close"'), "the close");
    l.say('{"ID":4}\n');
    expect(h.released()).toBe(true);
    await h.endVia(l);
    expect(await exit).toBe(0);
    expect(h.bridge.localHits).toBe(2);
    expect(h.stderr).toEqual([]);
  });

  test("chunks of only hits are held back: sent with the next request the daemon must answer, in order, and before our EOF", async () => {
    const h = harness({ localHits: onDisk });
    const exit = h.run();
    await until(() => h.links.length === 1, "the dial");
    const l = h.links[0]!;
    l.say(OFFER);
    h.push(get(1));
    h.push(get(3, 1));
    await until(() => h.lines().length === 2, "the answers from the disk");
    await Bun.sleep(20);
    expect(l.sent).toBe(""); // the daemon has not been woken for them
    h.push(get(2));
    await until(() => l.sent.length > 0, "the miss");
    expect(l.sent).toBe(get(1) + get(3, 1) + get(2));
    l.say(`{"ID":2,"Miss":true}\n${daemonHit(1)}`);
    h.push(get(4, 3));
    await until(() => h.lines().length === 4, "the hit");
    h.end();
    await until(() => l.shutDown, "the half-close");
    expect(l.sent).toBe(get(1) + get(3, 1) + get(2) + get(4, 3)); // the held get went out before our EOF
    l.say(`${daemonHit(3)}${daemonHit(4)}`);
    l.hangUp();
    expect(await exit).toBe(0);
    expect(ids(h.lines())).toEqual([1, 3, 2, 4]);
  });

  test("a chunk that ends a put's body is never held, whatever hits follow it in the chunk", async () => {
    const h = harness({ localHits: onDisk });
    void h.run();
    await until(() => h.links.length === 1, "the dial");
    const l = h.links[0]!;
    l.say(OFFER);
    const p = put(7, "a body cut in two");
    const cut = p.length - 6;
    h.push(p.slice(0, cut));
    await until(() => l.sent.length === cut, "the first half");
    h.push(p.slice(cut) + get(1));
    await until(() => h.lines().length === 1, "the hit");
    await until(() => l.sent.length > cut, "the rest of the put", 2000);
    expect(l.sent).toBe(p + get(1));
  });

  test("no offer, an offer this process does not see, or --no-local-hits: every answer is the daemon's", async () => {
    for (const [offer, localHits] of [
      [CAP, onDisk],
      [daemonCapabilityLine({ hello: false, disk: { ...DISK, mark: "another daemon" } }), onDisk],
      [OFFER, undefined],
    ] as const) {
      const h = harness({ localHits });
      const exit = h.run();
      await until(() => h.links.length === 1, "the dial");
      const l = h.links[0]!;
      l.say(offer);
      h.push(get(1) + close(2));
      await until(() => l.sent.includes('"close"'), "the requests");
      expect(h.lines()).toEqual([]);
      l.say(`${daemonHit(1)}{"ID":2}\n`);
      expect(h.lines()[0]).toContain("/daemon/says/1");
      await h.endVia(l);
      expect(await exit).toBe(0);
      expect(h.bridge.localHits).toBe(0);
    }
  });

  test("a hang-up: a get answered here is neither replayed nor answered again by the takeover", async () => {
    const h = harness({ localHits: onDisk, down: (n) => n === 3 });
    const exit = h.run();
    await until(() => h.links.length === 1, "the dial");
    h.links[0]!.say(OFFER);
    h.push(get(1) + get(2));
    await until(() => h.links[0]!.sent === get(1) + get(2), "the gets");
    h.links[0]!.hangUp();
    const l2 = await h.sentTo(2);
    expect(l2.sent).toBe(get(2)); // only what go still waits for
    // The second daemon offers nothing yet: a get for a disk entry goes to it.
    h.push(get(3));
    await until(() => l2.sent === get(2) + get(3), "the get on the new link");
    l2.hangUp(); // and the third dial fails: the local cache takes over
    await until(() => h.stderr.length > 0, "the takeover");
    h.push(close(4));
    h.end();
    expect(await exit).toBe(0);
    expect(ids(h.lines())).toEqual([1, 2, 3, 4]); // one answer each
    expect(JSON.parse(h.lines()[2]!).Miss).toBe(true); // 3 came from the takeover's (empty) cache, not the disk
    expect(h.bridge.localHits).toBe(1);
  });
  test("gets held back when the daemon goes away (an idle close, a restart): dropped, never sent to the next daemon, whose answers go would see twice", async () => {
    for (const how of ["next request", "EOF"] as const) {
      const h = harness({ localHits: onDisk });
      const exit = h.run();
      await until(() => h.links.length === 1, "the dial");
      const l1 = h.links[0]!;
      l1.say(OFFER);
      h.push(get(1));
      await until(() => h.lines().length === 1, "the answer from the disk");
      expect(l1.sent).toBe(""); // held
      l1.hangUp(); // nothing owed: an idle close
      if (how === "next request") {
        h.push(get(2));
        const l2 = await h.sentTo(2);
        expect(l2.sent).toBe(get(2));
        // A daemon answering anything it was not asked is dropped too, not passed on to go.
        l2.say(`${daemonHit(1)}{"ID":2,"Miss":true}\n`);
        h.push(close(3));
        await until(() => l2.sent.includes('"close"'), "the close");
        l2.say('{"ID":3}\n');
        await h.endVia(l2);
        expect(ids(h.lines())).toEqual([1, 2, 3]);
      } else {
        h.end();
        await Bun.sleep(30);
        expect(h.links.length).toBe(1); // nothing owed, nothing to send: no dial
        expect(ids(h.lines())).toEqual([1]);
      }
      expect(await exit).toBe(0);
    }
  });
});

describe("StallWatch", () => {
  test("fires once after ms of silence while owed; hearing anything restarts the clock; nothing owed or ms 0: never", async () => {
    let owed = true;
    const fired: number[] = [];
    const w = new StallWatch(40, () => owed, (q) => void fired.push(q));
    w.sent();
    w.sent(); // already running: the clock does not restart
    await Bun.sleep(25);
    w.alive();
    await Bun.sleep(25);
    expect(fired).toEqual([]); // 50 ms since sent, 25 since heard
    await until(() => fired.length === 1, "the stall");
    expect(fired[0]!).toBeGreaterThanOrEqual(40);
    await Bun.sleep(60);
    expect(fired.length).toBe(1);

    owed = false;
    const idle = new StallWatch(20, () => owed, () => void fired.push(-1));
    idle.sent();
    await Bun.sleep(50);
    const never = new StallWatch(0, () => true, () => void fired.push(-2));
    never.sent();
    await Bun.sleep(30);
    expect(fired.length).toBe(1);
  });
});
