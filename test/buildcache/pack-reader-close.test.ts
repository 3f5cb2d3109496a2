// A go command's pack reader once the command has closed (its last get
// answered as a miss by --request-timeout while the reader still waited):
// whatever arrives later must settle every get still waiting, and send
// nothing more to the bucket.
import { describe, expect, test } from "bun:test";
import { readHead, type HeadRead } from "../../src/buildcache/pack-heads.ts";
import { PackReader, type PackReaderDeps } from "../../src/buildcache/pack-reader.ts";
import { coldRun, hex, machine, outputs, packWorld, type Machine, type Output } from "./pack-helpers.ts";

const w = packWorld();

async function packedPrefix(n: number): Promise<{ p: string; outs: Output[] }> {
  const p = `rc-${hex().slice(0, 10)}`;
  const outs = outputs(n, (i) => 200_000 + i * 30_000); // a few frames, so a few segments
  const a = await machine(w, p);
  await coldRun(a.cache.handler, outs);
  await a.cache.handler.close();
  return { p, outs };
}

function depsOf(m: Machine): PackReaderDeps {
  const t = m.cache.tier!;
  return { client: t.client, disk: t.disk, metrics: t.metrics, logger: t.logger, known: t.knownHeads };
}

const settles = <T>(p: Promise<T>, ms = 3000) => Promise.race([p, Bun.sleep(ms).then(() => "still waiting" as const)]);

describe("a pack reader after its command closed", () => {
  test("a get waiting for the head when the command closes is answered (a miss) once the head comes, not left waiting", async () => {
    const { p, outs } = await packedPrefix(12);
    const b = await machine(w, p);
    const d = depsOf(b);
    let give!: (r: HeadRead) => void;
    const headAhead = new Promise<HeadRead>((r) => (give = r));
    const reader = new PackReader(d, outs[0]!.action, headAhead);
    const waiting = reader.wait(outs[8]!.action);
    reader.close();
    const head = await readHead(d, outs[0]!.action);
    expect(head.kind).toBe("found");
    give(head);
    expect(await settles(waiting)).toBeNull();
  }, 60_000);

  test("a segment waiting for the key's lead when the command closes sends no GET of its own afterwards", async () => {
    const { p, outs } = await packedPrefix(40);
    w.proxy.set({ latencyMs: 1500, onlyPath: /\.lead$/ }); // the head comes at once, the lead late
    try {
      const b = await machine(w, p);
      const reader = new PackReader(depsOf(b), outs[0]!.action);
      const waiting = reader.wait(outs[0]!.action); // the head, then the first segment waits for the lead
      await Bun.sleep(150);
      reader.close();
      const before = w.proxy.counts.GET ?? 0;
      await settles(waiting);
      await Bun.sleep(600);
      expect((w.proxy.counts.GET ?? 0) - before).toBe(0);
    } finally {
      w.proxy.reset();
    }
  }, 60_000);
});
