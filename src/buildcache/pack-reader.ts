// One go command's pack reads (layout: store/packs.ts).
//
// On the command's first local miss the head of its key is fetched (one
// GET), unless this machine saw that head within the hour (KnownHeads: the
// previous command of the key, in memory or as a copy in the cache
// directory); then the head it saw is used with no request, and the first
// get it knows nothing about (in no pack, not a known miss) reads the head
// from the bucket once, since another machine may have packed it since:
// entries the newer head adds join those of the old one.
//
// From then on, a get the local disk cannot answer asks wait(): if
// the head lists the action, the pack holding it is streamed (unless it
// already is) and the get waits for that entry to land; otherwise, or if
// the pack fails to bring it, wait() answers null at once and the caller
// falls back to the per-action object, unless the head lists the action
// among its known misses (knownMiss: the commands that wrote it could not
// store it either), which is a miss without a request. Gets that come while the head is
// loading wait for it (one round trip) rather than racing it with GETs of
// their own.
//
// A pack is fetched whole once any of its entries is asked for: the entries
// of one pack are what one command used, so the rest is asked for soon. It
// is cut into segments (store/packs.ts readerSegments) on frame boundaries, fetched with
// range GETs and landed one at a time in pack order, the next GETs sent
// ahead (pack-segments.ts; a get waiting for a later segment moves it to
// the front), each landed as it streams (store/pack-stream.ts, on worker
// threads: store/pack-lander.ts); the first comes with the head, from the
// key's lead (pack-lead.ts). Every entry is verified
// before it is served; a bad entry, a missing pack, a cut or stalled body
// only turn the entries concerned into fallbacks, counted. A pack that is
// missing or holds a bad entry is "broken": the command's pack upload
// leaves it out of the head it writes (pack-writer.ts).
//
// Everything a pack lands stays in the local store, asked for or not; at
// close the entries landed but never asked for are counted
// (pack_entries_unused): the price of fetching whole packs.

import type { S3Client, S3Object } from "../s3/client.ts";
import { asRemoteError } from "../s3/errors.ts";
import type { CostBook } from "../store/costs.ts";
import type { DiskStore, StoredOutput } from "../store/disk.ts";
import { frameLander } from "../store/pack-lander.ts";
import { FrameWindow, landSegment, type SegmentSink } from "../store/pack-stream.ts";
import { headIndex, packObject, readerSegments, type PackEntry, type PackHead, type PackRef, type Segment } from "../store/packs.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { readHead, type HeadRead, type KnownHeads } from "./pack-heads.ts";
import { landLead, PendingLead } from "./pack-lead.ts";
import { recordCost, settle, slotSink, unland, type Slot as PackSlot } from "./pack-slots.ts";
import { SegmentLine, type LineJob } from "./pack-segments.ts";

export interface PackReaderDeps {
  client: S3Client;
  disk: DiskStore;
  metrics: Metrics;
  logger: Logger;
  known: KnownHeads;
  /** Action costs (costs.ts): recorded from each entry landed, as from a single object. */
  costs?: CostBook;
}

type HeadState =
  | { kind: "idle" }
  | { kind: "loading"; ready: Promise<void> }
  /** from: the bucket, or the head this machine saw (not read again yet). */
  | { kind: "ready"; head: PackHead; slots: Map<string, Slot>; misses: ReadonlySet<string>; from: "bucket" | "seen" }
  | { kind: "absent" };

type Slot = PackSlot<SegmentTask>;

/** What a segment's GET answered: the pack's bytes (null: no such pack), or why not. */
type SegmentAnswer = { obj: S3Object | null } | { err: unknown };

/** A segment of a touched pack: idle until then, then in line, fetched, landed or failed. */
interface SegmentTask extends LineJob {
  seg: Segment;
  state: "idle" | "queued" | "landing" | "done" | "failed";
}

export class PackReader {
  private state: HeadState = { kind: "idle" };
  private readonly line = new SegmentLine();
  /** Frames with the landing threads, across segments (pack-stream.ts). */
  private readonly window = new FrameWindow();
  /** Each touched pack's segments (by pack name), in pack order; and each entry's segment. */
  private readonly tasks = new Map<string, SegmentTask[]>();
  private readonly taskOfEntry = new Map<PackEntry, SegmentTask>();
  private readonly missing = new Set<string>();
  /** The key's lead, asked for with a head read from the bucket. */
  private lead: PendingLead | null = null;
  /** The read of a head seen before from the bucket, once per command (wait()). */
  private refresh: Promise<void> | null = null;
  /** The command ended (close()): no segment sends a GET from then on. */
  private closed = false;
  /** Packs found missing or holding a bad entry (by name). */
  readonly broken = new Set<string>();

  constructor(
    private readonly d: PackReaderDeps,
    readonly key: string,
    /** The key's head already on its way (command.ts), used instead of a GET of its own. */
    private readonly headAhead: Promise<HeadRead> | null = null,
  ) {}

  /** The head as read, or null (not read yet, none, bad, or unreachable). */
  get head(): PackHead | null {
    return this.state.kind === "ready" ? this.state.head : null;
  }

  /** Starts fetching the head (the command's first local miss), and the landing threads meanwhile. */
  start(): void {
    if (this.state.kind !== "idle") return;
    frameLander().start();
    const ready = this.loadHead().then((next) => {
      this.state = next;
    });
    this.state = { kind: "loading", ready };
  }

  /** The action's output from a pack: waits while it is on its way; null if no pack will bring it. */
  async wait(actionID: string): Promise<StoredOutput | null> {
    this.start();
    if (this.state.kind === "loading") await this.state.ready;
    if (this.state.kind !== "ready") return null;
    if (!this.state.slots.has(actionID) && this.state.from === "seen" && !this.state.misses.has(actionID)) {
      await (this.refresh ??= this.readAgain(this.state));
    }
    const slot = this.state.slots.get(actionID);
    if (!slot) return null;
    slot.asked = true;
    switch (slot.state.kind) {
      case "landed":
        return slot.state.out;
      case "failed":
        return null;
      case "pending":
      case "landing": {
        const waiters = slot.state.waiters;
        // Waiting first: touching a segment after the command closed fails it, and its waiters, at once.
        const answer = new Promise<StoredOutput | null>((resolve) => waiters.push(resolve));
        this.touch(slot.task);
        return answer;
      }
    }
  }

  /** After wait() answered null: does the head list the action as a known miss (store/packs.ts)? */
  knownMiss(actionID: string): boolean {
    return this.state.kind === "ready" && this.state.misses.has(actionID);
  }

  /**
   * An output one of this command's packs landed on this disk: answered
   * from memory, without reading back the entry it just wrote (on a fresh
   * machine that read was most of the main thread's file system calls).
   */
  landedOutput(actionID: string): StoredOutput | null {
    if (this.state.kind !== "ready") return null;
    const slot = this.state.slots.get(actionID);
    if (slot?.state.kind !== "landed" || !slot.state.here) return null;
    slot.asked = true;
    return slot.state.out;
  }

  /**
   * A local hit of an entry a landing thread has written but not reported
   * yet: landed by this command's packs all the same (counted as a pack
   * hit). One it has reported is answered by landedOutput() before the
   * disk is asked.
   */
  landedHere(actionID: string): boolean {
    if (this.state.kind !== "ready") return false;
    const slot = this.state.slots.get(actionID);
    if (slot?.state.kind !== "landing") return false;
    slot.asked = true;
    // Its cost too, before the hit is counted: the report, which records it as well, comes later.
    recordCost(slot.entry, this.d.costs);
    return true;
  }

  /** The command ended: no new segment starts; counts what landed unasked. */
  close(): void {
    this.closed = true;
    this.line.close();
    this.lead?.close();
    if (this.state.kind !== "ready") return;
    let unused = 0;
    for (const s of this.state.slots.values()) if (!s.asked && s.state.kind === "landed" && s.state.here) unused++;
    if (unused) this.d.metrics.inc("pack_entries_unused", unused);
  }

  /** The state once the head is there: the one this machine saw, else the bucket's. */
  private async loadHead(): Promise<HeadState> {
    // A read ahead (command.ts) is only sent when no head is known.
    const seen = this.headAhead ? undefined : this.d.known.get(this.key);
    if (seen) {
      this.d.metrics.inc("pack_heads_seen");
      return { kind: "ready", head: seen, slots: this.slotsOf(seen, new Map()), misses: new Set(seen.misses), from: "seen" };
    }
    this.lead = new PendingLead(this.d, this.key);
    const r = await (this.headAhead ?? readHead(this.d, this.key));
    if (r.kind !== "found") {
      this.lead.close();
      return { kind: "absent" };
    }
    this.d.known.set(this.key, r.head, r.bytes);
    return { kind: "ready", head: r.head, slots: this.slotsOf(r.head, new Map()), misses: new Set(r.head.misses), from: "bucket" };
  }

  /**
   * The head seen before did not know an action: reads the bucket's (once).
   * Its actions not in a slot yet get one: slots already there keep their
   * state (a pack's name is its bytes, so a pack in both heads holds the
   * same entries), and its known misses replace the old ones.
   */
  private async readAgain(st: Extract<HeadState, { kind: "ready" }>): Promise<void> {
    const r = await readHead(this.d, this.key);
    st.from = "bucket";
    if (r.kind !== "found") return;
    this.d.known.set(this.key, r.head, r.bytes);
    this.slotsOf(r.head, st.slots);
    st.head = r.head;
    st.misses = new Set(r.head.misses);
  }

  /** Adds a slot for each action of the head that has none in slots. */
  private slotsOf(head: PackHead, slots: Map<string, Slot>): Map<string, Slot> {
    for (const [actionID, { pack, entry }] of headIndex(head)) {
      const task = slots.has(actionID) ? undefined : this.taskOf(pack, entry);
      if (task) slots.set(actionID, { entry, task, state: { kind: "pending", waiters: [] }, asked: false });
    }
    return slots;
  }

  /**
   * The segment task an entry belongs to (a pack's segments are planned
   * when a head naming it is read); none if a later head lists under the
   * same pack name an entry the first did not (a lying head: not served).
   */
  private taskOf(pack: PackRef, entry: PackEntry): SegmentTask | undefined {
    if (!this.tasks.has(pack.name)) {
      const ts = readerSegments(pack).map((seg) => this.segmentTask(seg));
      this.tasks.set(pack.name, ts);
      for (const t of ts) for (const e of t.seg.entries) this.taskOfEntry.set(e, t);
    }
    return this.taskOfEntry.get(entry);
  }

  private segmentTask(seg: Segment): SegmentTask {
    let answer: SegmentAnswer | { obj: S3Object; lead: true } | null = null;
    const t: SegmentTask = {
      seg,
      state: "idle",
      open: async () => {
        // Its pack turned out missing while it waited in line, or the command closed.
        if (this.unwanted(t)) return;
        // A lead copies the head's first pack (pack-writer.ts): no other pack waits for its answer.
        const lead = this.head?.packs[0]?.name === seg.pack.name ? await this.lead?.take(seg) : null;
        // The command closed meanwhile: no GET of its own, and no answer left unread.
        if (this.unwanted(t)) return lead?.cancel();
        answer = lead ? { obj: lead, lead: true } : await this.fetch(seg);
        if (this.unwanted(t) && "obj" in answer) answer.obj?.cancel();
      },
      land: async () => {
        if (t.state === "failed" || !answer) return;
        t.state = "landing";
        if ("lead" in answer) {
          const obj = answer.obj;
          answer = null; // landLead releases it
          return this.landLead(t, obj);
        }
        await this.land(t, answer);
      },
      drop: () => {
        if (answer && "obj" in answer) answer.obj?.cancel();
        this.failTask(t);
      },
    };
    return t;
  }

  /** A segment nobody will land: failed, or its command closed. */
  private unwanted(t: SegmentTask): boolean {
    return this.closed || t.state === "failed";
  }

  private async fetch(seg: Segment): Promise<SegmentAnswer> {
    try {
      this.d.metrics.inc("pack_gets");
      return { obj: await this.d.client.get(packObject(seg.pack.name), seg.whole ? {} : { range: [seg.start, seg.end - 1] }) };
    } catch (err) {
      return { err };
    }
  }

  /** A first segment from the key's lead (pack-lead.ts); the pack itself brings what the lead does not. */
  private async landLead(t: SegmentTask, obj: S3Object): Promise<void> {
    const ok = await landLead(t.seg, obj, {
      ...this.d,
      window: this.window,
      sink: this.sink(t.seg.pack),
      received: (n) => this.received(n),
      unland: (entry) => unland(this.slotOf(entry)),
      // The entries still pending land from the pack itself; those landed already are skipped.
      fromPack: () => {
        t.state = "landing";
        void this.fetch(t.seg).then((answer) => this.land(t, answer));
      },
    });
    if (ok) t.state = "done";
  }

  private received(n: number): void {
    this.d.metrics.inc("bytes_down", n);
    this.d.metrics.inc("pack_bytes_down", n);
  }

  /** Queues every segment of the entry's pack (once); the entry's own lands next. */
  private touch(task: SegmentTask): void {
    const all = this.tasks.get(task.seg.pack.name)!;
    if (all[0]!.state === "idle") {
      for (const t of all) t.state = "queued";
      this.line.push(all);
    }
    if (task.state === "queued") this.line.prioritize(task);
  }

  private async land(t: SegmentTask, answer: SegmentAnswer): Promise<void> {
    const { client, disk, metrics } = this.d;
    const { seg } = t;
    const name = packObject(seg.pack.name);
    try {
      if ("err" in answer) throw answer.err;
      const obj = answer.obj;
      if (!obj) {
        this.packMissing(seg.pack);
        return;
      }
      try {
        await landSegment(disk, seg, { body: obj.body, firstByte: obj.status === 206 ? seg.start : 0 }, this.sink(seg.pack), (n) => this.received(n), { window: this.window });
      } finally {
        obj.cancel();
      }
      t.state = "done";
    } catch (err) {
      const e = asRemoteError(err, `s3: get ${client.key(name)}`);
      metrics.inc("pack_errors");
      // Bytes that are not there (a short body, or a range past the end: 416) will not be there next time either.
      if (e.kind === "badobject" || e.status === 416) this.broken.add(seg.pack.name);
      this.d.logger.debug(`${e.message}; its entries not landed yet come as single objects`);
      this.failTask(t);
    }
  }

  private sink(pack: PackRef): SegmentSink {
    return slotSink({ ...this.d, slotOf: (entry) => this.slotOf(entry), broken: () => this.broken.add(pack.name) });
  }

  private slotOf(entry: PackEntry): Slot | null {
    if (this.state.kind !== "ready") return null;
    const slot = this.state.slots.get(entry.actionID);
    return slot && slot.entry === entry ? slot : null;
  }

  /** Entries of a task not landed yet fail: their gets fall back to single objects. */
  private failTask(t: SegmentTask): void {
    if (t.state === "done") return;
    t.state = "failed";
    for (const entry of t.seg.entries) {
      const slot = this.slotOf(entry);
      if (slot) settle(slot, { kind: "failed" });
    }
  }

  private packMissing(pack: PackRef): void {
    this.broken.add(pack.name);
    // Its other segments still in line find the pack missing too, and fail without a warning of their own.
    for (const t of this.tasks.get(pack.name) ?? []) this.failTask(t);
    if (this.missing.has(pack.name)) return; // another segment of it said so already
    this.missing.add(pack.name);
    this.d.metrics.inc("pack_errors");
    this.d.metrics.inc("pack_missing");
    this.d.logger.warn(`s3: pack ${this.d.client.key(packObject(pack.name))} is listed in a head but missing; its entries come as single objects`);
  }
}
