// A command's pack job that never runs (plugin mode's flush deadline passed
// with it still waiting) throws its pack file away: the file holds the
// command's outputs compressed, and nothing else would remove it for a day.
import { expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { packFilesDir } from "../../src/store/pack-file.ts";
import { hex, machine, outputs, packWorld, put } from "./pack-helpers.ts";

const w = packWorld();

const packFiles = (dir: string) => readdirSync(packFilesDir(dir)).filter((f) => f.includes(".pack"));

test("the flush deadline passes with the pack job waiting: its pack file is removed, no pack is written", async () => {
  const p = `wd-${hex().slice(0, 10)}`;
  const outs = outputs(12, () => 50_000);
  w.proxy.set({ latencyMs: 3000, only: "PUT" }); // the single objects' uploads outlast the deadline
  try {
    const a = await machine(w, p, { flushTimeoutMs: 300, uploadConcurrency: 1 });
    for (const o of outs) {
      expect(await a.cache.handler.get(o.action)).toBeNull();
      await put(a.cache.handler, o);
    }
    expect(packFiles(a.dir).length).toBe(1); // the puts, packed as they come
    await a.cache.handler.close();
    expect(a.metrics.get("upload_left")).toBeGreaterThan(0);
    for (let i = 0; i < 50 && packFiles(a.dir).length; i++) await Bun.sleep(20);
    expect(packFiles(a.dir)).toEqual([]);
    expect(a.metrics.get("pack_uploads") ?? 0).toBe(0);
  } finally {
    w.proxy.reset();
  }
}, 60_000);
