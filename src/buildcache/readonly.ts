// What a read-only client (one that presented --read-token) talks to.
//
// Gets go to the shared cache, exactly as for everyone else (through a
// view that reads packs but never writes one). Puts cannot be
// refused — an error answer on a put fails `go` builds (the module index,
// `go vet`, `go list -export` all need a DiskPath) — so each read-only
// connection gets a private scratch store of its own,
// <root>/<pid>-<conn>/, in Go's cache layout: its puts are written there and
// answered with a DiskPath there. Nothing in a scratch store is ever read by
// another connection, uploaded to S3, or moved into the shared cache, so a
// read-only client can never change what any other client gets (not even
// another read-only client: scratch stores are not shared).
//
// Scratch stores must outlive the go command that filled them (go/packages
// reads DiskPaths after the build), so they are removed only once unused for
// a day (sweepScratch, called by the daemon's periodic trim).

import { readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { CacheHandler } from "../cacheprog/session.ts";
import { createDiskStore } from "../store/disk.ts";
import { Metrics } from "../util/metrics.ts";
import { namesIn } from "../util/names-in.ts";
import { createLocalCache } from "./local.ts";

export const SCRATCH_MAX_AGE_MS = 24 * 3600_000;

export function createReadOnlyHandler(shared: CacheHandler, scratchDir: string, metrics: Metrics): CacheHandler {
  let scratch: CacheHandler | null = null;
  return {
    get: (actionID) => shared.get(actionID),
    put(actionID, outputID, size) {
      metrics.inc("read_only_puts");
      // Its own counters: these puts are not the shared cache's.
      scratch ??= createLocalCache(createDiskStore({ dir: scratchDir, overflowDir: join(scratchDir, "overflow") }), new Metrics());
      return scratch.put(actionID, outputID, size);
    },
    // The shared side's view of this one go command (its pack reads end).
    close: () => shared.close(),
  };
}

/** Removes scratch stores not written to for maxAgeMs. Returns how many went. */
export function sweepScratch(root: string, maxAgeMs = SCRATCH_MAX_AGE_MS, now = Date.now()): number {
  let n = 0;
  for (const name of namesIn(root)) {
    const p = join(root, name);
    try {
      if (newest(p) < now - maxAgeMs) {
        rmSync(p, { recursive: true, force: true });
        n++;
      }
    } catch {}
  }
  return n;
}

/** The newest mtime under dir (one level of subdirectories, as in Go's layout). */
function newest(dir: string): number {
  let t = statSync(dir).mtimeMs;
  for (const sub of readdirSync(dir)) {
    try {
      t = Math.max(t, statSync(join(dir, sub)).mtimeMs);
    } catch {}
  }
  return t;
}
