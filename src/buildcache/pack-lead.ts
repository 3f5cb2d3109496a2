// A key's lead (layout: store/packs.ts) on the reading side: asked for
// together with the head, and taken by the first segment of the pack it
// copies instead of a range GET sent once the head is in. A fresh machine's
// go command first asks for the small outputs at the start of its pack (in
// std's, 578 of 1,419 entries are in the first 1.6 MB), so landing them one
// round trip sooner lets it start that much sooner.

import type { S3Client, S3Object } from "../s3/client.ts";
import { asRemoteError } from "../s3/errors.ts";
import type { DiskStore } from "../store/disk.ts";
import { landSegment, type FrameWindow, type SegmentSink } from "../store/pack-stream.ts";
import { leadCovers, leadObject, type PackEntry, type Segment } from "../store/packs.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";

export interface LeadDeps {
  client: Pick<S3Client, "get">;
  metrics: Metrics;
}

/**
 * Waits for a lead at least this long: its answer comes when its whole body
 * has been sent by some servers and proxies, well after a small head's.
 */
const MIN_WAIT_MS = 300;

/** The lead's GET, sent; its body is read only by the segment that takes it. */
export class PendingLead {
  private readonly sentAt = performance.now();
  /** The response (null: none, or the GET failed); undefined until it is in. */
  private answer: S3Object | null | undefined = undefined;
  private readonly answered: Promise<S3Object | null>;
  private state: "waiting" | "taken" | "dropped" = "waiting";

  constructor(
    private readonly d: LeadDeps,
    key: string,
  ) {
    d.metrics.inc("pack_lead_gets");
    // Never throws: a lead that cannot be had only means the segment is fetched from the pack.
    this.answered = d.client
      .get(leadObject(key))
      .catch(() => null)
      .then((a) => (this.answer = a));
  }

  /**
   * The lead's response if it copies this segment (the first of its pack),
   * else null. It was sent with the head, so it is normally in by the time
   * the head is; one slower than the head took (at least MIN_WAIT_MS more)
   * is dropped, and the segment is fetched from the pack as without it.
   */
  async take(seg: Segment): Promise<S3Object | null> {
    if (this.state !== "waiting" || seg.start !== 0) return null;
    let a = this.answer;
    if (a === undefined) {
      const budget = Math.max(MIN_WAIT_MS, performance.now() - this.sentAt);
      a = await Promise.race([this.answered, Bun.sleep(budget).then(() => undefined)]);
      if (this.state !== "waiting") return null; // another segment took or dropped it meanwhile
    }
    if (a === undefined) {
      this.drop();
      return null;
    }
    if (!a || !leadCovers(a.metadata, seg.pack.name, seg.end)) return null; // none, or another pack's: kept for that one
    this.state = "taken";
    this.d.metrics.inc("pack_leads_used");
    return a;
  }

  /** The command ended: a lead nobody took is released, and counted if there was one. */
  close(): void {
    if (this.state === "waiting") this.drop();
  }

  private drop(): void {
    this.state = "dropped";
    void this.answered.then((a) => {
      if (!a) return;
      a.cancel();
      this.d.metrics.inc("pack_leads_unused");
    });
  }
}

/** What landing a lead needs from its reader (pack-reader.ts). */
export interface LeadLanding {
  disk: DiskStore;
  window: FrameWindow;
  metrics: Metrics;
  logger: Logger;
  /** The reader's sink for the lead's pack. */
  sink: SegmentSink;
  received(n: number): void;
  /** An entry the lead did not land waits again (pack-slots.ts unland). */
  unland(entry: PackEntry): void;
  /** Fetches the segment from the pack itself, for the entries still waiting. */
  fromPack(): void;
}

/**
 * Lands a first segment from the key's lead, in the shared window like any
 * segment: resolves once the lead's frames are with the landing threads,
 * true unless the pack itself is being asked for the segment already. An
 * entry that fails to land from the lead waits again, and once every entry
 * has been reported (or at once if the body failed) the segment is fetched
 * from the pack, once. A bad lead says nothing about the pack: it is not
 * taken for broken.
 */
export async function landLead(seg: Segment, obj: S3Object, l: LeadLanding): Promise<boolean> {
  let unreported = seg.entries.length;
  let bad = false;
  let refetched = false;
  const spoilt = () => {
    if (bad) return;
    bad = true;
    l.metrics.inc("pack_leads_bad");
  };
  const refetch = () => {
    if (refetched) return;
    refetched = true;
    l.fromPack();
  };
  const reported = () => {
    if (--unreported === 0 && bad) refetch();
  };
  const sink: SegmentSink = {
    isLocal: (entry) => {
      const local = l.sink.isLocal(entry);
      if (local) reported();
      return local;
    },
    landed: (entry, out) => {
      l.sink.landed(entry, out);
      reported();
    },
    failed: (entry, err) => {
      spoilt();
      if (asRemoteError(err, "s3: pack lead").kind === "badobject") l.metrics.inc("integrity_failures");
      l.unland(entry);
      reported();
    },
  };
  try {
    await landSegment(l.disk, seg, { body: obj.body, firstByte: 0 }, sink, l.received, { window: l.window });
  } catch (err) {
    // Cut short: the frames read whole were reported before this threw; the others never will be.
    l.logger.debug(`${asRemoteError(err, "s3: pack lead").message}; its segment comes from the pack`);
    spoilt();
    refetch();
  } finally {
    obj.cancel();
  }
  return !refetched;
}
