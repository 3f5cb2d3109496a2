// Build manifests: a remote-warm build fetches what it will need before it
// asks.
//
// A warm `go build` asks for about a thousand actions, one or two at a time
// (the go command waits for each answer before it starts the action), so on
// an empty local cache every remote hit is a full S3 round trip in series.
// The next build of the same command on the same tree asks for nearly the
// same actions in nearly the same order, so at close the plugin uploads the
// list of action IDs it used (hits and puts), keyed by the first action the
// go command asked for; that first action ID is the same for the same
// command, tree and toolchain on any machine.
//
//   key   [<prefix>/]manifests/<first actionhex>     (layout: s3.ts)
//   body  zstd of "gostash-manifest 1\n" + one action ID (hex) per line,
//         in the order the go command used them; at most MAX_IDS lines
//
// On the first local miss of a run the manifest is fetched (one GET), and
// every listed action that is not on the local disk is downloaded in the
// background, in order, by a few workers, through the same single-flight
// map as the go command's own gets: a get for an action being prefetched
// waits for that download instead of starting another. Everything a
// prefetch downloads is verified like any remote hit (tiered.ts). A missing
// or unreadable manifest only means no prefetch.

import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";

const MAGIC = "gostash-manifest 1\n";
/** A bigger build than this (more actions) keeps only its first ones. */
const MAX_IDS = 50_000;
/** Fewer actions than this are not worth a manifest. */
const MIN_IDS = 8;
const ID = /^[0-9a-f]{64}$/;

export interface ManifestStore {
  getBlob(name: string): Promise<Uint8Array | null>;
  putBlob(name: string, body: Uint8Array): Promise<void>;
}

export interface PrefetchOptions {
  store: ManifestStore;
  /** True if the action is on the local disk already. */
  haveLocally(actionID: string): boolean;
  /** Download one action into the local store (shared with the go command's gets). */
  fetch(actionID: string): Promise<unknown>;
  workers: number;
  /** Never upload a manifest (--read-only). */
  readOnly: boolean;
  metrics: Metrics;
  logger: Logger;
}

export function manifestName(firstActionID: string): string {
  return `manifests/${firstActionID}`;
}

export function encodeManifest(ids: Iterable<string>): Uint8Array {
  const lines: string[] = [];
  for (const id of ids) {
    if (lines.length >= MAX_IDS) break;
    lines.push(id);
  }
  return Bun.zstdCompressSync(Buffer.from(MAGIC + lines.join("\n") + "\n"));
}

/** The action IDs of a manifest; throws if it is not one. */
export function decodeManifest(body: Uint8Array): string[] {
  const text = Buffer.from(Bun.zstdDecompressSync(body)).toString("latin1");
  if (!text.startsWith(MAGIC)) throw new Error("not a gostash manifest");
  const ids = text.slice(MAGIC.length).split("\n").filter((l) => l !== "");
  if (ids.length > MAX_IDS) throw new Error(`manifest lists ${ids.length} actions, more than ${MAX_IDS}`);
  for (const id of ids) if (!ID.test(id)) throw new Error(`manifest line ${JSON.stringify(id.slice(0, 80))} is not an action ID`);
  return ids;
}

export interface Prefetcher {
  /** Every get of the go command, before it is answered. */
  onGet(actionID: string): void;
  /** A get the local disk could not answer. */
  onLocalMiss(): void;
  /** An action this run used: a hit (local or remote) or a put. */
  used(actionID: string): void;
  /** Stops prefetching and uploads this run's manifest if it differs; waits at most ms. */
  close(ms: number): Promise<void>;
}

export function createPrefetcher(o: PrefetchOptions): Prefetcher {
  const { metrics, logger } = o;
  let first: string | null = null;
  let requested = false;
  let stopped = false;
  let previous: string[] | null = null;
  const usedIDs = new Set<string>();

  async function run(): Promise<void> {
    let body: Uint8Array | null;
    try {
      body = await o.store.getBlob(manifestName(first!));
    } catch (err) {
      logger.debug(`s3: prefetch: manifest for ${first}: ${(err as Error)?.message ?? err}`);
      metrics.inc("prefetch_errors");
      return;
    }
    if (!body) return;
    let ids: string[];
    try {
      ids = decodeManifest(body);
    } catch (err) {
      metrics.inc("prefetch_errors");
      logger.warn(`s3: prefetch: manifest ${manifestName(first!)}: ${(err as Error).message}; ignored`);
      return;
    }
    previous = ids;
    metrics.inc("prefetch_manifests");
    let next = 0;
    const worker = async () => {
      while (!stopped && next < ids.length) {
        const id = ids[next++]!;
        if (usedIDs.has(id) || o.haveLocally(id)) continue;
        metrics.inc("prefetch_gets");
        if (await o.fetch(id).catch(() => null)) metrics.inc("prefetch_landed");
      }
    };
    // Not awaited: close() stops them taking new actions; a download under
    // way ends (or fails) with the store.
    for (let i = 0; i < o.workers; i++) void worker();
  }

  return {
    onGet(actionID) {
      first ??= actionID;
    },
    onLocalMiss() {
      if (requested || !first) return;
      requested = true;
      void run();
    },
    used(actionID) {
      usedIDs.add(actionID);
    },
    async close(ms) {
      stopped = true;
      if (o.readOnly || !first || usedIDs.size < MIN_IDS) return;
      if (previous && sameIDs(previous, usedIDs)) return;
      const upload = o.store.putBlob(manifestName(first), encodeManifest(usedIDs)).then(
        () => metrics.inc("manifest_uploads"),
        (err) => {
          metrics.inc("prefetch_errors");
          logger.debug(`s3: manifest upload: ${(err as Error)?.message ?? err}`);
        },
      );
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([upload, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
      clearTimeout(timer);
    },
  };
}

function sameIDs(a: string[], b: Set<string>): boolean {
  if (a.length !== b.size) return false;
  for (const id of a) if (!b.has(id)) return false;
  return true;
}
