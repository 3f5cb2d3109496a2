// The compiled binary with a bucket, driven request by request through a
// pipe as the go command drives it: stdin is read with blocking reads while
// every answer is a local hit (cacheprog/stdio.ts), and the reader must go
// asynchronous as soon as an answer needs the event loop (a remote get). If
// it did not, the remote get below would never be answered: the plugin
// would sit in read() while the go command waits for that answer.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { createDiskStore } from "../../src/store/disk.ts";
import { BIN, tempDir } from "../helpers/env.ts";
import { startS3Server, type S3Server } from "../helpers/s3server.ts";

const tmp = tempDir("gostash-stdio-modes-");
let s3: S3Server;

beforeAll(async () => {
  s3 = await startS3Server();
}, 120_000);

afterAll(async () => {
  await s3?.stop();
  tmp.cleanup();
});

const b64 = (hex: string) => Buffer.from(hex, "hex").toString("base64");
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** One plugin process; ask() writes a request and waits for the answer with its ID. */
function plugin(dir: string) {
  const p = Bun.spawn([BIN, `--cache-dir=${dir}`, "--s3-timeout=5s"], {
    env: { ...process.env, ...s3.env, GOCACHE_KEY_PREFIX: "stdio-modes", GOCACHEPROG: "" },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  const reader = p.stdout.getReader();
  let buffered = "";
  const answers = new Map<number, Record<string, unknown>>();
  const next = async (id: number, ms: number) => {
    const until = Date.now() + ms;
    while (!answers.has(id)) {
      const left = until - Date.now();
      if (left <= 0) throw new Error(`no answer to request ${id} within ${ms} ms`);
      const r = await Promise.race([reader.read(), Bun.sleep(left).then(() => null)]);
      if (!r || r.done) continue;
      buffered += new TextDecoder().decode(r.value);
      for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) answers.set(JSON.parse(line).ID, JSON.parse(line));
      }
    }
    return answers.get(id)!;
  };
  return {
    async ask(req: Record<string, unknown>, body?: Uint8Array, ms = 20_000) {
      p.stdin.write(`${JSON.stringify(req)}\n`);
      if (body) p.stdin.write(`\n"${Buffer.from(body).toString("base64")}"\n`);
      p.stdin.flush();
      return next(req.ID as number, ms);
    },
    async end() {
      p.stdin.end();
      expect(await p.exited).toBe(0);
    },
  };
}

test("with a bucket: local hits answered, then a remote hit answered while stdin stays open, then local hits again", async () => {
  // Machine A puts X; its close uploads it.
  const x = { action: randomBytes(32).toString("hex"), body: randomBytes(3000) };
  const a = plugin(join(tmp.path, "a"));
  const put = await a.ask({ ID: 1, Command: "put", ActionID: b64(x.action), OutputID: b64(sha(x.body)), BodySize: x.body.length }, x.body);
  expect(put.Err ?? null).toBeNull();
  await a.ask({ ID: 2, Command: "close" });
  await a.end();

  // Machine B has Y on its disk only.
  const bDir = join(tmp.path, "b");
  const y = { action: randomBytes(32).toString("hex"), body: randomBytes(500) };
  const w = createDiskStore({ dir: bDir }).put(y.action, sha(y.body), y.body.length);
  w.write(y.body);
  w.commit();

  const b = plugin(bDir);
  expect((await b.ask({ ID: 1, Command: "get", ActionID: b64(y.action) })).OutputID).toBe(b64(sha(y.body)));
  const remote = await b.ask({ ID: 2, Command: "get", ActionID: b64(x.action) });
  expect(remote.OutputID).toBe(b64(sha(x.body)));
  expect(sha(await Bun.file(remote.DiskPath as string).bytes())).toBe(sha(x.body));
  expect((await b.ask({ ID: 3, Command: "get", ActionID: b64(y.action) })).OutputID).toBe(b64(sha(y.body)));
  const miss = await b.ask({ ID: 4, Command: "get", ActionID: b64(randomBytes(32).toString("hex")) });
  expect(miss.Miss).toBe(true);
  await b.ask({ ID: 5, Command: "close" });
  await b.end();
}, 120_000);
