// Prefetch: a remote-warm build fetches what it will need before it asks.
//
// A warm `go build` asks for about a thousand actions, one or two at a time
// (the go command waits for each answer before it starts the action), so on
// an empty local cache every remote hit is a full S3 round trip in series.
// The next build of the same command on the same tree asks for nearly the
// same actions in nearly the same order, so at close a run uploads the list
// of action IDs it used (hits and puts) as a build manifest (layout:
// store/manifests.ts), keyed by the first action the go command asked for.
//
// On the first local miss of a run the manifest is fetched (one GET), and
// every listed action that is not on the local disk is downloaded in the
// background, in order, by a few workers, through the same single-flight as
// the go command's own gets: a get for an action being prefetched waits for
// that download instead of starting another. Everything a prefetch
// downloads is verified like any remote hit. A missing or unreadable
// manifest only means no prefetch.

import type { S3Client } from "../s3/client.ts";
import { decodeManifest, encodeManifest, manifestName, MAX_MANIFEST_BYTES } from "../store/manifests.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";

/** Fewer actions than this are not worth a manifest. */
const MIN_IDS = 8;

export interface PrefetchOptions {
  client: Pick<S3Client, "getBytes" | "put">;
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

  async function readManifest(name: string): Promise<string[] | null> {
    let body: Uint8Array | null;
    try {
      body = await o.client.getBytes(name, MAX_MANIFEST_BYTES);
    } catch (err) {
      logger.debug(`s3: prefetch: ${name}: ${(err as Error)?.message ?? err}`);
      metrics.inc("prefetch_errors");
      return null;
    }
    if (!body) return null;
    try {
      return decodeManifest(body);
    } catch (err) {
      metrics.inc("prefetch_errors");
      logger.warn(`s3: prefetch: manifest ${name}: ${(err as Error).message}; ignored`);
      return null;
    }
  }

  async function run(): Promise<void> {
    const ids = await readManifest(manifestName(first!));
    if (!ids) return;
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
    // way ends (or fails) on its own.
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
      const upload = o.client.put(manifestName(first), encodeManifest(usedIDs)).then(
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
