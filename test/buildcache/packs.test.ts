// Packs in-process (layout: src/store/packs.ts): real disk stores in temp
// dirs, a real S3 server (versitygw), a real proxy in between that counts
// requests and injects latency. Each test uses its own bucket prefix.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { decodeHead, encodeHead } from "../../src/store/packs.ts";
import { encodeMeta } from "../../src/store/s3-objects.ts";
import { coldRun, expectHit, hex, keys, machine, packWorld, nextCommand, objectPath, outputs, outputsIntact, packNames, put, randomBody, readHeadFile, sha256, warmRun, type Output } from "./pack-helpers.ts";
import type { Hit } from "../../src/cacheprog/protocol.ts";
import { join } from "node:path";

const w = packWorld();

const prefix = () => `p-${hex().slice(0, 10)}`;

/** Machine A after a cold command that also asked for an action it never stored (a link): a known miss of its head. */
async function packedWithLink(p: string, n: number) {
  const outs = outputs(n);
  const link = hex();
  const a = await machine(w, p);
  await coldRun(a.cache.handler, outs);
  expect(await a.cache.handler.get(link)).toBeNull();
  await a.cache.handler.close();
  return { a, outs, link };
}

/** A command's head copies: one per key, its first two gets. */
const headCopyNames = (outs: { action: string }[]) => outs.slice(0, 2).map((o) => `${o.action}.head`).sort();

describe("packs", () => {
  test("a command packs what it used; a fresh machine gets all of it from one head and one pack GET", async () => {
    const p = prefix();
    const outs = [...outputs(40), { action: hex(), body: new Uint8Array(0) }, { action: hex(), body: randomBody(1 << 20) }];
    const a = await machine(w, p);
    await coldRun(a.cache.handler, outs);
    await a.cache.handler.close();
    expect(a.metrics.get("pack_uploads")).toBe(1);
    expect(a.metrics.get("pack_entries_up")).toBe(outs.length);
    const names = await packNames(w, p);
    expect(names.length).toBe(1);
    // The head is written under both of the command's first two gets.
    for (const key of [outs[0]!.action, outs[1]!.action]) {
      const head = readHeadFile(w, p, key);
      expect(head.packs.map((x) => `packs/${x.name}.pack`)).toEqual(names);
      expect(head.packs[0]!.entries.map((e) => e.actionID)).toEqual(outs.map((o) => o.action));
    }

    const b = await machine(w, p);
    w.proxy.resetCounts();
    await warmRun(b.cache.handler, outs);
    // The head and, with it, the lead: here the whole pack, one segment (store/packs.ts).
    expect(w.proxy.counts.GET).toBe(2);
    expect(b.metrics.get("pack_leads_used")).toBe(1);
    expect(b.metrics.get("pack_gets")).toBe(0);
    expect(b.metrics.get("hits_pack")).toBe(outs.length);
    expect(b.metrics.get("remote_gets")).toBe(0);
    expect(outputsIntact(b.dir)).toBe(outs.length);
    await b.cache.handler.close();
    // Everything it used was packed already: nothing to upload, not even a request.
    expect(w.proxy.requests).toBe(2);
    expect(b.metrics.get("pack_uploads")).toBe(0);
  }, 60_000);

  test("the pack holds the bytes each put was given: output files removed right after their puts are packed all the same", async () => {
    const p = prefix();
    const outs = outputs(20);
    const a = await machine(w, p);
    for (const o of outs) expect(await a.cache.handler.get(o.action)).toBeNull();
    for (const o of outs) rmSync(await put(a.cache.handler, o));
    await a.cache.handler.close();
    expect(a.metrics.get("pack_entries_up")).toBe(outs.length);
    const b = await machine(w, p);
    await warmRun(b.cache.handler, outs);
    expect(b.metrics.get("hits_pack")).toBe(outs.length);
    await b.cache.handler.close();
  }, 60_000);

  test("gets asked all at once wait for their entries while the pack streams; nothing is fetched twice", async () => {
    const p = prefix();
    const outs = outputs(60, (i) => 2000 + i * 500);
    const a = await machine(w, p);
    await coldRun(a.cache.handler, outs);
    await a.cache.handler.close();
    const b = await machine(w, p);
    w.proxy.resetCounts();
    w.proxy.set({ latencyMs: 150 });
    try {
      const hits = await Promise.all(outs.map((o) => b.cache.handler.get(o.action)));
      hits.forEach((h, i) => expectHit(h, outs[i]!));
    } finally {
      w.proxy.reset();
    }
    expect(w.proxy.counts.GET).toBe(2);
    expect(b.metrics.get("hits_pack")).toBe(outs.length);
  }, 60_000);

  test("an entry a pack landed for this command is answered from memory, at once: the entry file it wrote is not read back", async () => {
    const p = prefix();
    const outs = outputs(30);
    const a = await machine(w, p);
    await coldRun(a.cache.handler, outs);
    await a.cache.handler.close();
    const b = await machine(w, p);
    expectHit(await b.cache.handler.get(outs[0]!.action), outs[0]!);
    for (let i = 0; i < 200 && b.metrics.get("pack_entries_landed") < outs.length; i++) await Bun.sleep(10);
    expect(b.metrics.get("pack_entries_landed")).toBe(outs.length);
    // Without its entry file a get could only be answered by waiting on the pack (a promise), never from the disk.
    for (const sub of readdirSync(b.dir).filter((d) => /^[0-9a-f]{2}$/.test(d))) {
      for (const f of readdirSync(`${b.dir}/${sub}`)) if (f.endsWith("-a")) rmSync(`${b.dir}/${sub}/${f}`);
    }
    for (const o of outs.slice(1)) {
      const hit = b.cache.handler.get(o.action);
      expect(hit instanceof Promise).toBe(false);
      expectHit(hit as Awaited<typeof hit>, o);
    }
    expect(b.metrics.get("hits_pack")).toBe(outs.length);
    await b.cache.handler.close();
  }, 60_000);

  test("a pack larger than a segment is fetched with range GETs, landed in order", async () => {
    const p = prefix();
    const outs = outputs(8, () => 5 << 20).map((o) => ({ ...o, body: randomBody(o.body.length) }));
    const a = await machine(w, p);
    await coldRun(a.cache.handler, outs);
    await a.cache.handler.close();
    const b = await machine(w, p);
    w.proxy.resetCounts();
    await warmRun(b.cache.handler, outs);
    // 40 MiB of incompressible 5 MiB entries in segments growing from 2 to 12 MiB: 1, 1, 1, 2, 2, 1 entries.
    // The first comes with the head, as the key's lead; the other five are range GETs.
    expect(a.metrics.get("pack_leads_up")).toBe(2);
    expect(b.metrics.get("pack_leads_used")).toBe(1);
    expect(b.metrics.get("pack_gets")).toBe(5);
    expect(w.proxy.counts.GET).toBe(7);
    expect(b.metrics.get("hits_pack")).toBe(outs.length);
  }, 120_000);

  test("a later command uploads a delta of only what no pack holds; a fresh machine reads both", async () => {
    const p = prefix();
    const first = outputs(30);
    const more = outputs(10);
    const a = await machine(w, p);
    await coldRun(a.cache.handler, first);
    await a.cache.handler.close();

    const a2 = await machine(w, p);
    await warmRun(a2.cache.handler, first);
    await coldRun(a2.cache.handler, more);
    await a2.cache.handler.close();
    expect(a2.metrics.get("pack_entries_up")).toBe(more.length);
    const head = readHeadFile(w, p, first[0]!.action);
    expect(head.packs.map((x) => x.entries.length)).toEqual([30, 10]);

    const b = await machine(w, p);
    w.proxy.resetCounts();
    await warmRun(b.cache.handler, [...first, ...more]);
    expect(b.metrics.get("hits_pack")).toBe(40);
    expect(w.proxy.counts.GET).toBe(3);
  }, 60_000);

  test("past eight packs the head is compacted into one pack of what the command used", async () => {
    const p = prefix();
    const base = outputs(12);
    let used = [...base];
    for (let i = 0; i < 9; i++) {
      const m = await machine(w, p);
      const fresh = outputs(2);
      await warmRunOrCold(m, used);
      await coldRun(m.cache.handler, fresh);
      used = [...used, ...fresh];
      await m.cache.handler.close();
      const head = readHeadFile(w, p, base[0]!.action);
      if (i < 8) expect(head.packs.length).toBe(i + 1);
      else {
        expect(m.metrics.get("pack_compactions")).toBe(1);
        expect(head.packs.length).toBe(1);
        expect(head.packs[0]!.entries.length).toBe(used.length);
      }
    }
    const b = await machine(w, p);
    await warmRun(b.cache.handler, used);
    expect(b.metrics.get("hits_pack")).toBe(used.length);
  }, 120_000);

  test("--read-only reads packs but never writes one", async () => {
    const p = prefix();
    const outs = outputs(20);
    const a = await machine(w, p);
    await coldRun(a.cache.handler, outs.slice(0, 10));
    await a.cache.handler.close();
    const before = await keys(w, p);
    const ro = await machine(w, p, { readOnly: true });
    w.proxy.resetCounts();
    await warmRun(ro.cache.handler, outs.slice(0, 10));
    await coldRun(ro.cache.handler, outs.slice(10));
    await ro.cache.handler.close();
    expect(ro.metrics.get("hits_pack")).toBe(10);
    expect(w.proxy.counts.PUT ?? 0).toBe(0);
    expect(await keys(w, p)).toEqual(before);
  }, 60_000);

  test("a daemon connection's close returns before its pack is uploaded; the upload follows in the background", async () => {
    const p = prefix();
    const outs = outputs(15);
    const d = await machine(w, p);
    const conn = d.cache.connection("rw", 1);
    await coldRun(conn, outs);
    await d.cache.flush(20_000); // the single objects are up
    w.proxy.set({ latencyMs: 1_500, only: "PUT" });
    try {
      await conn.close();
      expect(await packNames(w, p)).toEqual([]); // answered before the pack went up
      expect((await d.cache.flush(20_000)).left).toBe(0);
    } finally {
      w.proxy.reset();
    }
    expect((await packNames(w, p)).length).toBe(1);
    // A second connection of the same daemon that used nothing new asks nothing at close.
    const conn2 = d.cache.connection("rw", 2);
    w.proxy.resetCounts();
    await warmRun(conn2, outs);
    await conn2.close();
    await d.cache.flush(20_000);
    expect(w.proxy.requests).toBe(0);
    // Pack files are built in the cache dir and removed after the upload; the head's copy stays.
    expect(readdirSync(`${d.dir}/gostash-packs`).sort()).toEqual(["heads"]);
    const [bucket] = readdirSync(`${d.dir}/gostash-packs/heads`);
    expect(readdirSync(`${d.dir}/gostash-packs/heads/${bucket}`).sort()).toEqual(headCopyNames(outs));
  }, 60_000);

  test("an entry a landing thread has written but not reported yet is a hit with its cost (time saved counts it)", async () => {
    const p = prefix();
    const outs = outputs(300, () => 2500);
    const a = await machine(w, p);
    await coldRun(a.cache.handler, outs);
    await a.cache.handler.close();
    expect(a.metrics.get("costs_recorded")).toBe(outs.length);

    const b = await machine(w, p);
    const entryFile = (o: Output) => join(b.dir, o.action.slice(0, 2), `${o.action}-a`);
    const first = b.cache.handler.get(outs[0]!.action); // starts the pack
    const until = Date.now() + 20_000;
    while (!existsSync(entryFile(outs[0]!)) && Date.now() < until) await new Promise((r) => setImmediate(r));
    // From here the main thread is held: the landing thread goes on writing, its reports wait.
    const last = outs.at(-1)!;
    while (!existsSync(entryFile(last)) && Date.now() < until) {}
    const reported = b.metrics.get("pack_entries_landed");
    const hit = b.cache.handler.get(last.action);
    expect(hit).not.toBeInstanceOf(Promise); // answered from the disk, at once
    expectHit(hit as Hit, last);
    // The case under test: the last entry's report had not come yet.
    expect(reported).toBeLessThan(outs.length);
    expect(b.metrics.get("uncosted_hits")).toBe(0);
    expect(b.metrics.get("time_saved_seconds")).toBeGreaterThan(0);
    expect(await first).not.toBeNull();
    await warmRun(b.cache.handler, outs);
    expect(b.metrics.get("uncosted_hits")).toBe(0);
    await b.cache.handler.close();
  }, 60_000);
});

describe("known misses", () => {
  test("an action A asked for and never stored (a link) is in A's head; B's get of it is a miss without a request", async () => {
    const p = prefix();
    const { outs, link } = await packedWithLink(p, 10);
    expect(readHeadFile(w, p, outs[0]!.action).misses).toEqual([link]);

    const b = await machine(w, p);
    await warmRun(b.cache.handler, outs);
    expect(b.metrics.get("remote_gets")).toBe(0);
    expect(await b.cache.handler.get(link)).toBeNull();
    expect(b.metrics.get("pack_known_misses")).toBe(1);
    expect(b.metrics.get("remote_gets")).toBe(0);
    // One that is not known is still asked for, one object at a time.
    expect(await b.cache.handler.get(hex())).toBeNull();
    expect(b.metrics.get("remote_gets")).toBe(1);
    await b.cache.handler.close();
  }, 60_000);

  test("a get that timed out or came back damaged is not a known miss: the bucket holds it, and the next machine gets it", async () => {
    const p = prefix();
    const held = outputs(2);
    const c = await machine(w, p);
    await coldRun(c.cache.handler, held);
    await c.cache.handler.close();

    const outs = outputs(6);
    const absent = hex();
    const a = await machine(w, p, { requestTimeoutMs: 300 });
    await coldRun(a.cache.handler, outs);
    expect(await a.cache.handler.get(absent)).toBeNull();
    w.proxy.set({ corruptBody: true, only: "GET" });
    try {
      expect(await a.cache.handler.get(held[0]!.action)).toBeNull();
    } finally {
      w.proxy.reset();
    }
    w.proxy.set({ latencyMs: 1500, only: "GET" });
    try {
      expect(await a.cache.handler.get(held[1]!.action)).toBeNull();
    } finally {
      w.proxy.reset();
    }
    expect(a.metrics.get("integrity_failures")).toBe(1);
    expect(a.metrics.get("request_timeouts")).toBe(1);
    await a.cache.handler.close();
    // Only the action the bucket said it lacks.
    expect(readHeadFile(w, p, outs[0]!.action).misses).toEqual([absent]);

    const b = await machine(w, p);
    await warmRun(b.cache.handler, outs);
    for (const o of held) expectHit(await b.cache.handler.get(o.action), o);
    expect(b.metrics.get("pack_known_misses")).toBe(0);
    await b.cache.handler.close();
  }, 60_000);

  test("a later command that stores the action packs it, and the next head no longer lists it as a miss", async () => {
    const p = prefix();
    const outs = outputs(6);
    const late = outputs(1)[0]!;
    const a = await machine(w, p);
    await coldRun(a.cache.handler, outs);
    expect(await a.cache.handler.get(late.action)).toBeNull();
    await a.cache.handler.close();
    const next = await nextCommand(w, a, p);
    await warmRun(next.cache.handler, outs);
    await put(next.cache.handler, late);
    await next.cache.handler.close();
    const h = readHeadFile(w, p, outs[0]!.action);
    expect(h.misses).toEqual([]);
    expect(h.packs.flatMap((pk) => pk.entries.map((e) => e.actionID))).toContain(late.action);
  }, 60_000);
});

describe("the heads a machine knows (plugin mode: one command per process)", () => {
  /** The copies' directory of the one bucket and prefix the machine used. */
  const copies = (m: { dir: string }) => {
    const [one, ...more] = readdirSync(`${m.dir}/gostash-packs/heads`);
    expect(more).toEqual([]);
    return `${m.dir}/gostash-packs/heads/${one}`;
  };
  /** Machine A after one cold command under prefix p: its pack and head are in the bucket. */
  const packedMachine = async (p: string, n: number) => {
    const outs = outputs(n);
    const a = await machine(w, p);
    await coldRun(a.cache.handler, outs);
    await a.cache.handler.close();
    return { a, outs };
  };

  test("a warm command on the machine that wrote the head asks the bucket nothing: its copy says everything is packed", async () => {
    const p = prefix();
    const { a, outs } = await packedMachine(p, 12);
    expect(readdirSync(copies(a)).sort()).toEqual(headCopyNames(outs));
    const next = await nextCommand(w, a, p);
    w.proxy.resetCounts();
    await warmRun(next.cache.handler, outs); // all local hits
    await next.cache.handler.close();
    expect(w.proxy.requests).toBe(0);
    expect(next.metrics.get("pack_head_gets")).toBe(0);
  }, 60_000);

  test("without a copy, a warm command asks for its head at its first get, while it runs; its close asks nothing more, and the copy is back", async () => {
    const p = prefix();
    const { a, outs } = await packedMachine(p, 12);
    rmSync(copies(a), { recursive: true });
    const next = await nextCommand(w, a, p);
    w.proxy.resetCounts();
    await warmRun(next.cache.handler, outs); // all local hits
    expect(next.metrics.get("pack_head_gets")).toBe(1); // asked for before close was called
    await next.cache.handler.close();
    expect(w.proxy.requests).toBe(1);
    expect(next.metrics.get("pack_head_gets")).toBe(1);
    expect(next.metrics.get("pack_uploads")).toBe(0);
    expect(existsSync(`${copies(a)}/${outs[0]!.action}.head`)).toBe(true);
  }, 60_000);

  test("a copy older than an hour is not trusted, and one that does not decode is dropped: the head is read again", async () => {
    const p = prefix();
    const { a, outs } = await packedMachine(p, 8);
    const copy = `${copies(a)}/${outs[0]!.action}.head`;
    const old = new Date(Date.now() - 2 * 3600_000);
    utimesSync(copy, old, old);
    const next = await nextCommand(w, a, p);
    await warmRun(next.cache.handler, outs);
    await next.cache.handler.close();
    expect(next.metrics.get("pack_head_gets")).toBe(1);
    expect(statSync(copy).mtimeMs).toBeGreaterThan(Date.now() - 60_000); // seen again: fresh

    writeFileSync(copy, "not a head");
    const third = await nextCommand(w, a, p);
    await warmRun(third.cache.handler, outs);
    await third.cache.handler.close();
    expect(third.metrics.get("pack_head_gets")).toBe(1); // at close: the copy said nothing usable
    expect(third.metrics.get("pack_uploads")).toBe(0);
    expect(decodeHead(readFileSync(copy), outs[0]!.action).packs.length).toBe(1); // replaced by the head read
  }, 60_000);

  test("the same cache directory with another prefix does not take the first prefix's copies: it asks its own bucket and packs there", async () => {
    const { a, outs } = await packedMachine(prefix(), 8);
    const p2 = prefix();
    const next = await nextCommand(w, a, p2);
    await warmRun(next.cache.handler, outs); // all local hits
    await next.cache.handler.close();
    expect(next.metrics.get("pack_heads_missing")).toBeGreaterThanOrEqual(1); // asked its own bucket: none there yet
    expect(next.metrics.get("pack_uploads")).toBe(1);
    expect((await packNames(w, p2)).length).toBe(1);
    expect(readdirSync(`${a.dir}/gostash-packs/heads`).length).toBe(2);
  }, 60_000);

  /** Forgets actions on the machine's disk (their entry files), so the next command misses them locally. */
  const forget = (m: { dir: string }, actions: string[]) => actions.forEach((a) => rmSync(`${m.dir}/${a.slice(0, 2)}/${a}-a`));

  test("a command that misses locally takes the head it saw from its copy: the pack streams with no head GET, known misses stay known", async () => {
    const p = prefix();
    const { a, outs, link } = await packedWithLink(p, 10);
    forget(a, outs.slice(4).map((o) => o.action));

    const next = await nextCommand(w, a, p);
    w.proxy.resetCounts();
    await warmRun(next.cache.handler, outs);
    expect(await next.cache.handler.get(link)).toBeNull();
    await next.cache.handler.close();
    expect(next.metrics.get("pack_heads_seen")).toBe(1);
    expect(next.metrics.get("pack_head_gets")).toBe(0);
    expect(next.metrics.get("hits_pack")).toBe(6);
    expect(next.metrics.get("pack_known_misses")).toBe(1);
    expect(next.metrics.get("remote_gets")).toBe(0);
    expect(w.proxy.counts.GET).toBe(next.metrics.get("pack_gets"));
    expect(w.proxy.requests).toBe(next.metrics.get("pack_gets"));
  }, 60_000);

  test("an action the head it saw does not know makes the command read the head once more: another machine's newer pack brings it", async () => {
    const p = prefix();
    const { a, outs } = await packedMachine(p, 8);
    // Machine C runs the same command (same first gets: the same key) with one action more: a delta.
    const extra = outputs(2);
    const c = await machine(w, p);
    await warmRun(c.cache.handler, outs);
    for (const o of extra) await put(c.cache.handler, o);
    await c.cache.handler.close();
    expect(readHeadFile(w, p, outs[0]!.action).packs.length).toBe(2);

    forget(a, [outs[5]!.action]);
    const next = await nextCommand(w, a, p);
    await warmRun(next.cache.handler, [...outs, ...extra]);
    expect(await next.cache.handler.get(hex())).toBeNull(); // unknown to both heads: one object GET, no third head read
    await next.cache.handler.close();
    expect(next.metrics.get("pack_heads_seen")).toBe(1);
    expect(next.metrics.get("pack_head_gets")).toBe(1);
    expect(next.metrics.get("hits_pack")).toBe(3); // outs[5] from A's pack, both extras from C's
    expect(next.metrics.get("remote_gets")).toBe(1);
    expect(next.metrics.get("pack_uploads")).toBe(0);
  }, 60_000);

  test("a newer head naming a pack it saw with an entry that pack does not hold is not believed for that entry", async () => {
    const p = prefix();
    const { a, outs } = await packedMachine(p, 6);
    const head = readHeadFile(w, p, outs[0]!.action);
    const [pack] = head.packs;
    // An empty output after the last one of the last frame: a head that decodes, and a pack that does not hold it.
    const liar = hex();
    const last = pack!.frames.length - 1;
    const meta = { outputID: sha256(new Uint8Array(0)), size: 0, timeNanos: 1n, encoding: "identity" as const };
    const fake = { actionID: liar, frame: last, offset: pack!.frames[last]!.rawLength, meta, raw: encodeMeta(meta) };
    writeFileSync(objectPath(w, p, `packs/${outs[0]!.action}.head`), encodeHead({ ...head, packs: [{ ...pack!, entries: [...pack!.entries, fake] }] }));

    forget(a, [outs[3]!.action]);
    const next = await nextCommand(w, a, p);
    await warmRun(next.cache.handler, outs); // the copy brings outs[3]
    expect(await next.cache.handler.get(liar)).toBeNull();
    await next.cache.handler.close();
    expect(next.metrics.get("pack_head_gets")).toBe(1);
    expect(next.metrics.get("hits_pack")).toBe(1);
    expect(next.metrics.get("remote_gets")).toBe(1); // asked for as a single object: none
  }, 60_000);

  test("a head read that timed out is not asked again at close: no pack this time, counted", async () => {
    const p = prefix();
    const { a, outs } = await packedMachine(p, 6);
    rmSync(copies(a), { recursive: true });
    const next = await nextCommand(w, a, p, { timeoutMs: 300 });
    w.proxy.set({ hang: true });
    try {
      await warmRun(next.cache.handler, outs);
      await next.cache.handler.close();
    } finally {
      w.proxy.reset();
    }
    expect(next.metrics.get("pack_head_gets")).toBe(1);
    expect(next.metrics.get("pack_head_errors")).toBe(1);
    expect(next.metrics.get("pack_upload_errors")).toBe(1);
  }, 60_000);
});

/** The first command of a series is cold; later ones find everything packed or local. */
async function warmRunOrCold(m: Awaited<ReturnType<typeof machine>>, outs: ReturnType<typeof outputs>): Promise<void> {
  const hits = await Promise.all(outs.map(async (o) => ((await m.cache.handler.get(o.action)) ? 1 : 0)));
  const missing = outs.filter((_, i) => !hits[i]);
  for (const o of missing) await put(m.cache.handler, o);
}
