// Packs that lie, break or vanish (layout: src/store/packs.ts): the bucket's
// files are altered in place (versitygw keeps objects as plain files) or the
// proxy cuts and stalls answers. Whatever happens, every get is either a
// correct hit or a miss, and what went wrong is counted.
import { describe, expect, test } from "bun:test";
import { copyFileSync, readFileSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import type { CacheHandler } from "../../src/cacheprog/session.ts";
import { leadMeta, leadObject } from "../../src/store/packs.ts";
import { coldRun, expectHit, hex, machine, packWorld, objectPath, outputs, outputsIntact, packNames, readHeadFile, sha256, warmRun, type Machine, type Output } from "./pack-helpers.ts";

const w = packWorld();

/** A prefix whose bucket holds one command's outputs (single objects and one pack). */
async function packed(n = 30): Promise<{ p: string; outs: Output[]; pack: string }> {
  const p = `f-${hex().slice(0, 10)}`;
  // Sizes that make a few frames (they grow from 1 MiB).
  const outs = outputs(n, (i) => 100_000 + i * 20_000);
  const a = await machine(w, p);
  await coldRun(a.cache.handler, outs);
  await a.cache.handler.close();
  const names = await packNames(w, p);
  expect(names.length).toBe(1);
  return { p, outs, pack: objectPath(w, p, names[0]!) };
}

/**
 * The tests that spoil a pack itself go without its leads: a lead is an
 * intact copy of the pack's first segment and would serve it (leads that
 * lie or break are tested below).
 */
function dropLeads(p: string, outs: Output[]): void {
  for (const o of outs.slice(0, 2)) unlinkSync(objectPath(w, p, `packs/${o.action}.lead`));
}

/** Each get is a correct hit or a miss; returns how many were hits. */
async function getAll(h: CacheHandler, outs: Output[]): Promise<number> {
  let hits = 0;
  for (const o of outs) {
    const hit = await h.get(o.action);
    if (!hit) continue;
    expectHit(hit, o);
    hits++;
  }
  return hits;
}

describe("packs that are wrong never serve anything wrong", () => {
  test("a corrupted byte: the outputs it spoils are refused and counted, fetched as single objects; the rest come from the pack", async () => {
    const { p, outs, pack } = await packed();
    dropLeads(p, outs);
    const head = readHeadFile(w, p, outs[0]!.action);
    const frame = head.packs[0]!.frames[1]!;
    const bytes = readFileSync(pack);
    bytes[frame.offset + Math.floor(frame.length / 2)]! ^= 0x20;
    writeFileSync(pack, bytes);

    const b = await machine(w, p);
    await warmRun(b.cache.handler, outs);
    const spoiled = b.metrics.get("pack_integrity_failures");
    expect(spoiled).toBeGreaterThan(0);
    expect(spoiled).toBeLessThanOrEqual(head.packs[0]!.entries.filter((e) => e.frame === 1).length);
    expect(b.metrics.get("hits_pack")).toBe(outs.length - spoiled);
    expect(b.metrics.get("hits_remote")).toBe(spoiled);
    expect(outputsIntact(b.dir)).toBe(outs.length);
    // Its close packs what it used again: the same bytes, so the same name, and the damaged object is whole again.
    await b.cache.handler.close();
    expect(b.metrics.get("pack_uploads")).toBe(1);
    const after = readHeadFile(w, p, outs[0]!.action);
    expect(after.packs.map((x) => x.name)).toEqual([head.packs[0]!.name]);
    expect(sha256(readFileSync(pack))).toBe(head.packs[0]!.name);
    const c = await machine(w, p);
    await warmRun(c.cache.handler, outs);
    expect(c.metrics.get("hits_pack")).toBe(outs.length);
  }, 60_000);

  test("a truncated pack: outputs past the end come as single objects, counted", async () => {
    const { p, outs, pack } = await packed();
    dropLeads(p, outs);
    const head = readHeadFile(w, p, outs[0]!.action);
    const cut = head.packs[0]!.frames[2]!;
    truncateSync(pack, cut.offset + 10);
    const whole = head.packs[0]!.entries.filter((e) => e.frame < 2).length;
    const b = await machine(w, p);
    await warmRun(b.cache.handler, outs);
    expect(b.metrics.get("pack_errors")).toBeGreaterThan(0);
    expect(b.metrics.get("hits_pack")).toBe(whole);
    expect(b.metrics.get("hits_remote")).toBe(outs.length - whole);
    expect(outputsIntact(b.dir)).toBe(outs.length);
  }, 60_000);

  test("a pack the head names is gone: single objects, counted; the next pack replaces it", async () => {
    const { p, outs, pack } = await packed();
    dropLeads(p, outs);
    unlinkSync(pack);
    const b = await machine(w, p);
    await warmRun(b.cache.handler, outs);
    expect(b.metrics.get("pack_missing")).toBe(1);
    expect(b.metrics.get("hits_remote")).toBe(outs.length);
    await b.cache.handler.close();
    expect(b.metrics.get("pack_uploads")).toBe(1);
    expect(readHeadFile(w, p, outs[0]!.action).packs.length).toBe(1);
  }, 60_000);

  /**
   * Machine B after spoil(leadFile): every output still comes from packs
   * (the lead, then the pack itself for what the lead did not land), none
   * as a single object, and the pack is not taken for broken: B's close has
   * nothing to pack again. Returns B's metrics.
   */
  async function spoiledLead(spoil: (leadFile: string) => void): Promise<Machine["metrics"]> {
    const { p, outs } = await packed();
    spoil(objectPath(w, p, `packs/${outs[0]!.action}.lead`));
    const b = await machine(w, p);
    await warmRun(b.cache.handler, outs);
    expect(b.metrics.get("pack_leads_used")).toBe(1);
    expect(b.metrics.get("pack_leads_bad")).toBe(1);
    expect(b.metrics.get("hits_pack")).toBe(outs.length);
    expect(b.metrics.get("hits_remote")).toBe(0);
    expect(outputsIntact(b.dir)).toBe(outs.length);
    await b.cache.handler.close();
    expect(b.metrics.get("pack_uploads")).toBe(0);
    return b.metrics;
  }

  test("a lead with a corrupted byte: its segment comes from the pack itself, which is not taken for broken", async () => {
    const m = await spoiledLead((leadFile) => {
      const bytes = readFileSync(leadFile);
      bytes[Math.floor(bytes.length / 2)]! ^= 0x20;
      writeFileSync(leadFile, bytes);
    });
    expect(m.get("integrity_failures")).toBeGreaterThan(0);
  }, 60_000);

  test("a lead cut short: the entries it did not bring come from the pack itself", async () => {
    await spoiledLead((leadFile) => truncateSync(leadFile, Math.floor(readFileSync(leadFile).length * 0.6)));
  }, 60_000);

  test("a lead naming another pack (two writers raced) is not used: its first segment comes from the pack", async () => {
    const { p, outs } = await packed();
    const key = outs[0]!.action;
    const a = await machine(w, p);
    await a.cache.tier!.client.put(leadObject(key), readFileSync(objectPath(w, p, `packs/${key}.lead`)), { metadata: leadMeta("0".repeat(64), 1 << 30) });
    const b = await machine(w, p);
    await warmRun(b.cache.handler, outs);
    await b.cache.handler.close();
    for (let i = 0; i < 100 && !b.metrics.get("pack_leads_unused"); i++) await Bun.sleep(10);
    expect(b.metrics.get("pack_leads_used")).toBe(0);
    expect(b.metrics.get("pack_leads_unused")).toBe(1);
    expect(b.metrics.get("hits_pack")).toBe(outs.length);
    expect(outputsIntact(b.dir)).toBe(outs.length);
  }, 60_000);

  test("a missing head, a head that is not one, and a head written for another key are ignored and counted", async () => {
    const { p, outs } = await packed();
    const headFile = objectPath(w, p, `packs/${outs[0]!.action}.head`);
    const other = await packed(12);
    const cases: [string, () => void, string][] = [
      ["missing", () => unlinkSync(headFile), "pack_heads_missing"],
      ["garbage", () => writeFileSync(headFile, "not a head at all"), "pack_bad_heads"],
      ["another key's", () => copyFileSync(objectPath(w, other.p, `packs/${other.outs[0]!.action}.head`), headFile), "pack_bad_heads"],
    ];
    for (const [, spoil, counter] of cases) {
      spoil();
      const b = await machine(w, p, { prefetch: true, readOnly: true });
      await warmRun(b.cache.handler, outs);
      expect(b.metrics.get(counter)).toBe(1);
      expect(b.metrics.get("hits_pack")).toBe(0);
      expect(b.metrics.get("hits_remote")).toBe(outs.length);
    }
  }, 60_000);

  test("bodies cut or altered on the wire, or a bucket that hangs: misses or correct hits, never a wrong one", async () => {
    const { p, outs } = await packed();
    const faults = [{ cutBody: true, only: "GET" }, { corruptBody: true, only: "GET" }, { hang: true }] as const;
    for (const f of faults) {
      const b = await machine(w, p, { timeoutMs: 1_000, requestTimeoutMs: 2_000 });
      w.proxy.set(f);
      let hits: number;
      try {
        hits = await getAll(b.cache.handler, outs);
      } finally {
        w.proxy.reset();
      }
      const m = b.metrics;
      expect(hits).toBe(m.get("hits_pack") + m.get("hits_remote"));
      expect(m.get("pack_errors") + m.get("pack_head_errors") + m.get("pack_bad_heads") + m.get("integrity_failures") + m.get("remote_errors")).toBeGreaterThan(0);
      outputsIntact(b.dir);
    }
  }, 120_000);

  test("two commands of one key closing at once: a valid head wins, every pack it names exists, nothing is lost", async () => {
    const { p, outs } = await packed(10);
    const extra = [outputs(8), outputs(8)];
    const ms = await Promise.all([machine(w, p), machine(w, p)]);
    await Promise.all(
      ms.map(async (m, i) => {
        await warmRun(m.cache.handler, outs);
        await coldRun(m.cache.handler, extra[i]!);
      }),
    );
    await Promise.all(ms.map((m) => m.cache.handler.close()));
    const head = readHeadFile(w, p, outs[0]!.action);
    const names = new Set((await packNames(w, p)).map((n) => n.slice(6, -5)));
    for (const pack of head.packs) expect(names.has(pack.name)).toBe(true);
    // The first pack and one delta (the writers raced: the last head wins), or both deltas
    // (one read the head after the other wrote it): which one depends on scheduling.
    expect([2, 3]).toContain(head.packs.length);
    const deltas = head.packs.length - 1;
    // Every output still comes back: from packs, or as single objects.
    const c = await machine(w, p);
    await warmRun(c.cache.handler, [...outs, ...extra[0]!, ...extra[1]!]);
    expect(c.metrics.get("hits_pack")).toBe(10 + 8 * deltas);
    expect(c.metrics.get("hits_remote")).toBe(16 - 8 * deltas);
  }, 60_000);
});
