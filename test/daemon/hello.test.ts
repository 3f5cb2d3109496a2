// The hello (src/daemon/hello.ts): the line `gostash connect` sends a daemon
// that advertises it reads one, saying which toolchain the go command is.
// The line itself, then the daemon's plugin socket in-process reading it
// (or, when it does not advertise, never expecting it).
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createLocalCache } from "../../src/buildcache/local.ts";
import { CAPABILITY_LINE } from "../../src/cacheprog/protocol.ts";
import { daemonCapabilityLine, helloLine, NO_HELLO, parseHello, readCapability, type ClientHello } from "../../src/daemon/hello.ts";
import { startPluginServer, type PluginServer } from "../../src/daemon/server.ts";
import { createDiskStore } from "../../src/store/disk.ts";
import { toolchainOf } from "../../src/store/toolchain-marks.ts";
import type { Logger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";
import { tempDir } from "../helpers/env.ts";
import { closeLine, getLine, putLines, randomID, RawClient, type Addr } from "./helpers.ts";

/** The capability line of a daemon that reads hellos and offers no disk. */
const DAEMON_CAPABILITY_LINE = daemonCapabilityLine({ hello: true, disk: null });

const GO_ENV = { GOVERSION: "go1.26.0", GOOS: "linux", GOARCH: "amd64" };
const HELLO = helloLine(GO_ENV)!;

describe("the hello line", () => {
  test("says the go command's toolchain; nothing to say without it", () => {
    expect(HELLO).toBe('GOSTASH-HELLO {"GOVERSION":"go1.26.0","GOOS":"linux","GOARCH":"amd64"}\n');
    expect(parseHello(HELLO.trimEnd())).toEqual({ goEnv: GO_ENV, command: null });
    expect(helloLine({ GOOS: "linux", GOARCH: "amd64" })).toBeNull();
    expect(helloLine({ ...GO_ENV, GOARCH: " " })).toBeNull();
    // The command line where the bridge can see it (Linux), cut to a bounded length.
    const withCommand = helloLine(GO_ENV, `go test ${"x".repeat(300)}`)!;
    expect(parseHello(withCommand.trimEnd())).toEqual({ goEnv: GO_ENV, command: `go test ${"x".repeat(192)}` });
    expect(parseHello(helloLine({}, "go env")!.trimEnd())).toEqual({ goEnv: {}, command: "go env" });
    // The daemon reads the toolchain from it as plugin mode reads its own environment.
    expect(toolchainOf(parseHello(HELLO.trimEnd()).goEnv)).toBe("linux-amd64/go1.26.0");
  });

  test("a hello that is not one is refused with its reason; what it says is taken as strings only; a version of dots never becomes a path", () => {
    expect(() => parseHello("GOSTASH-HELLO nope")).toThrow("hello is not JSON");
    expect(() => parseHello("GOSTASH-HELLO [1]")).toThrow("hello is not a JSON object");
    expect(() => parseHello('{"ID":1}')).toThrow("not a hello line");
    expect(parseHello('GOSTASH-HELLO {"GOOS":"linux","GOARCH":7,"X":"y","command":3}')).toEqual({ goEnv: { GOOS: "linux" }, command: null });
    const toolchain = (v: string) => toolchainOf(parseHello(`GOSTASH-HELLO ${JSON.stringify({ ...GO_ENV, GOVERSION: v })}`).goEnv);
    expect(toolchain("..")).toBe("linux-amd64/__");
    expect(toolchain("go1/../x")).toBe("linux-amd64/go1_.._x");
  });

  test("the daemon's capability line advertises it and is otherwise the usual one", () => {
    expect(readCapability(DAEMON_CAPABILITY_LINE.trimEnd())).toEqual({ hello: true, disk: null });
    expect(readCapability(CAPABILITY_LINE.trimEnd())).toEqual({ hello: false, disk: null });
    expect(readCapability("not json")).toEqual({ hello: false, disk: null });
    const { GostashHello, ...rest } = JSON.parse(DAEMON_CAPABILITY_LINE);
    expect(GostashHello).toBe(1);
    expect(rest).toEqual(JSON.parse(CAPABILITY_LINE));
  });

  test("a daemon's capability line may offer its disk; a bridge reads it back, and nothing from a malformed offer", () => {
    const disk = { dir: '/var/cache/go "build"', mark: "0123456789abcdef0123456789abcdef" };
    const line = daemonCapabilityLine({ hello: true, disk }).trimEnd();
    expect(readCapability(line)).toEqual({ hello: true, disk });
    expect(readCapability(daemonCapabilityLine({ hello: false, disk }).trimEnd())).toEqual({ hello: false, disk });
    const { GostashHello, GostashDisk, ...rest } = JSON.parse(line);
    expect(rest).toEqual(JSON.parse(CAPABILITY_LINE));
    expect(daemonCapabilityLine({ hello: false, disk: null })).toBe(CAPABILITY_LINE);
    for (const bad of [{ dir: 1, mark: "m" }, { dir: "/d" }, { dir: "", mark: "m" }, "/d"]) {
      expect(readCapability(JSON.stringify({ ID: 0, GostashDisk: bad })).disk).toBeNull();
    }
  });
});

let tmp: ReturnType<typeof tempDir>;
let server: PluginServer;
let addr: Addr;
let clients: { access: string; client: ClientHello }[];
let warnings: string[];

async function start(o: { hello: boolean; token?: string }) {
  const metrics = new Metrics();
  const local = createLocalCache(createDiskStore({ dir: join(tmp.path, "cache") }), metrics);
  const handler = { ...local, close() {} };
  const logger: Logger = { error() {}, info() {}, debug() {}, warn: (m: unknown) => void warnings.push(String(m)) } as unknown as Logger;
  const tokens = o.token ? { required: true, check: (t: string) => (t === o.token ? ("rw" as const) : ("none" as const)) } : undefined;
  server = await startPluginServer({
    address: { kind: "unix", path: join(tmp.path, "d.sock") },
    handler,
    metrics,
    logger,
    tokens: tokens as never,
    hello: o.hello,
    connectionHandler: (access, _id, client) => (clients.push({ access, client }), handler),
  });
  addr = { unix: (server.address as { path: string }).path };
}

/** One put, its get, close: the conversation works after whatever came first. */
async function converse(c: RawClient, first = ""): Promise<void> {
  const action = randomID();
  await c.send(first + putLines(1, action, new Uint8Array(5000).fill(3)) + getLine(2, action) + closeLine(3));
  expect((await c.response(2)).Size).toBe(5000);
  expect(await c.response(3)).toEqual({ ID: 3 });
}

describe("the plugin socket", () => {
  beforeEach(() => {
    tmp = tempDir("gostash-hello-");
    clients = [];
    warnings = [];
  });

  afterEach(async () => {
    server.stopAccepting();
    server.closeAll();
    await server.idle(2000);
    tmp.cleanup();
  });

  describe("a daemon that reads hellos", () => {
    test("advertises it; a hello before the requests reaches the connection's handler", async () => {
      await start({ hello: true });
      const c = await RawClient.connect(addr);
      await converse(c, HELLO);
      expect(c.lines[0]).toBe(DAEMON_CAPABILITY_LINE.trimEnd());
      expect(clients).toEqual([{ access: "rw", client: { goEnv: GO_ENV, command: null } }]);
    }, 30_000);

    test("a hello arriving a few bytes at a time, after an auth line, is read whole", async () => {
      await start({ hello: true, token: "t0k" });
      const c = await RawClient.connect(addr);
      await c.send("GOSTASH-AUTH t0k\n");
      for (let i = 0; i < HELLO.length; i += 7) {
        await c.send(HELLO.slice(i, i + 7));
        await Bun.sleep(2);
      }
      await converse(c);
      expect(c.lines[0]).toBe(DAEMON_CAPABILITY_LINE.trimEnd());
      expect(clients).toEqual([{ access: "rw", client: { goEnv: GO_ENV, command: null } }]);
    }, 30_000);

    test("a client that sends none (an older bridge) is served at once; one that is not understood is said on stderr and served", async () => {
      await start({ hello: true });
      const plain = await RawClient.connect(addr);
      await converse(plain);
      const bad = await RawClient.connect(addr);
      await converse(bad, "GOSTASH-HELLO nope\n");
      expect(clients.map((c) => c.client)).toEqual([NO_HELLO, NO_HELLO]);
      expect(warnings.some((w) => w.includes("ignored its hello: hello is not JSON"))).toBe(true);
    }, 30_000);
  });

  describe("a daemon that does not read hellos", () => {
    test("sends the usual capability line, and a hello would be a broken request to it (why a bridge waits to be asked)", async () => {
      await start({ hello: false });
      const ok = await RawClient.connect(addr);
      await converse(ok);
      expect(ok.lines[0]).toBe(CAPABILITY_LINE.trimEnd());
      const c = await RawClient.connect(addr);
      await c.send(HELLO + getLine(1, randomID()));
      expect(await c.waitClosed()).toBe(true);
      expect(c.responses.has(1)).toBe(false);
    }, 30_000);
  });
});
