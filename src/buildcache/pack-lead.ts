// A key's lead (layout: store/packs.ts) on the reading side: asked for
// together with the head, and taken by the first segment of the pack it
// copies instead of a range GET sent once the head is in. A fresh machine's
// go command first asks for the small outputs at the start of its pack (in
// std's, 578 of 1,419 entries are in the first 1.6 MB), so landing them one
// round trip sooner lets it start that much sooner.

import type { S3Client, S3Object } from "../s3/client.ts";
import { leadCovers, leadObject, type Segment } from "../store/packs.ts";
import type { Metrics } from "../util/metrics.ts";

export interface LeadDeps {
  client: Pick<S3Client, "get">;
  metrics: Metrics;
}

/** Waits for a lead at least this long (a head from a local answer takes no time at all). */
const MIN_WAIT_MS = 50;

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
