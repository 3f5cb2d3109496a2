// One go command's pack upload (layout: store/packs.ts; what goes in:
// pack-policy.ts).
//
// While the command runs, the writer records the actions it used (hits of
// any tier and puts, in the order of first use), and packs its puts as they
// are stored (PutsFile): a put follows a miss, so its output is almost
// always one no pack holds, and compressing frames while the build runs
// leaves little for its end (measured: a level-6 pack of `go build std`
// costs 2.4 s of CPU; at the end of a cold build that would be in the go
// command's wait). When the command ends, seal() gives the job that writes
// the pack, run by the bucket's upload queue in the background like any
// upload: plugin mode's close waits for it within --flush-timeout, as for
// every upload; the daemon answers the go command's close first.
//
// The job: (1) if the head this machine knows (pack-heads.ts' KnownHeads:
// seen within the hour, by this process or an earlier one) already packs
// everything the command used, stop: no request at all. (2) Read the head afresh (one GET:
// another machine may have written since). (3) Plan (nothing, delta,
// compact or skip). (4) Finish the pack file: the puts already in it, then
// the plan's other outputs in use order from the local store
// (store/pack-file.ts: frames compressed on the thread pool); outputs over
// 64 MiB stay single objects, and outputs beyond --max-pack-size are left
// out. A put of an action some pack already held (its pack failed to bring
// it) is packed again: rare, and harmless. (5) PUT
// the pack, then (for a new first pack) its lead, then the head under each
// of the command's keys: the head is written last, so a reader never sees
// a head naming a pack that is not complete. Any failure only means no
// pack this time (counted); a lead that could not be written only costs
// readers a round trip.

import type { UploadJob } from "../s3/upload-queue.ts";
import type { S3Client } from "../s3/client.ts";
import type { CostBook } from "../store/costs.ts";
import type { DiskStore, StoredOutput } from "../store/disk.ts";
import { PackFileWriter, packTempPath } from "../store/pack-file.ts";
import { encodeHead, headObject, leadMeta, leadObject, packObject, readerSegments, type PackHead, type PackRef } from "../store/packs.ts";
import { MAX_ENCODED_OUTPUT, type ObjectMeta } from "../store/s3-objects.ts";
import { asRemoteError } from "../s3/errors.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { readHead, type HeadRead, type KnownHeads } from "./pack-heads.ts";
import { nextMisses, planPack, type PackPlan } from "./pack-policy.ts";

export interface PackWriterDeps {
  client: S3Client;
  disk: DiskStore;
  metrics: Metrics;
  logger: Logger;
  known: KnownHeads;
  /** Where pack files are built (store/pack-file.ts packFilesDir). */
  dir: string;
  compress: boolean;
  /** Bytes of one pack at most (0: no limit). */
  maxPackSize: number;
  /** Outputs larger than this never reach the bucket, in a pack either (--max-put-size; 0: no limit). */
  maxPutSize: number;
  /** Action costs (costs.ts): each entry carries its own, as a single object does. */
  costs?: CostBook;
}

/**
 * A lead larger than this is not written: a first segment is about
 * FIRST_SEGMENT_BYTES (store/packs.ts) unless its first frame is one large
 * output, and then it saves the reader a round trip at the price of
 * uploading that output twice more.
 */
const MAX_LEAD_BYTES = 8 << 20;

/** Small enough for a pack: a single object's bound, and --max-put-size. */
function packable(size: number, d: PackWriterDeps): boolean {
  return size <= MAX_ENCODED_OUTPUT && (d.maxPutSize <= 0 || size <= d.maxPutSize);
}

/** A pack entry's metadata: a single object's, with the action's cost when one was recorded. */
function entryMeta(actionID: string, out: StoredOutput, costs: CostBook | undefined): ObjectMeta {
  const costMs = costs?.get(actionID);
  return { outputID: out.outputID, size: out.size, timeNanos: out.timeNanos, encoding: "identity", ...(costMs !== undefined ? { costMs } : {}) };
}

/** A head read ahead (command.ts) as a ReadSide, or null. */
function aheadSide(r: HeadRead | null): ReadSide | null {
  return r?.kind === "found" ? { head: r.head, broken: new Set() } : null;
}

/** What one command did: the actions it used (in order of first use), and its misses. */
interface CommandUse {
  used: string[];
  misses: string[];
}

/** What the reader learned that the writer needs: the head it read, and packs that failed. */
export interface ReadSide {
  readonly head: PackHead | null;
  readonly broken: ReadonlySet<string>;
}

type WriterState = "collecting" | "sealed";

export class PackWriter {
  private readonly used = new Set<string>();
  /** Gets answered as misses by every tier (a put may follow: then it is used, not a miss). */
  private readonly missed = new Set<string>();
  private state: WriterState = "collecting";
  private readonly puts: PutsFile;

  constructor(private readonly d: PackWriterDeps) {
    this.puts = new PutsFile(d);
  }

  /** The command used this action (a hit of any tier, or a put). */
  use(actionID: string): void {
    if (this.state === "collecting") this.used.add(actionID);
  }

  /** The command asked for this action and the bucket answered it has none (not a timeout or an error). */
  miss(actionID: string): void {
    if (this.state === "collecting") this.missed.add(actionID);
  }

  /** A put of the command was stored: packed now, likely part of the delta. */
  stored(actionID: string, out: StoredOutput, body: Uint8Array | null = null): void {
    if (this.state === "collecting") this.puts.add(actionID, out, body);
  }

  /**
   * The command ended. Returns the upload job (for the bucket's queue), or
   * null if it used nothing. `keys`: the command's first distinct gets.
   */
  seal(keys: string[], read: ReadSide | null, headAhead: Promise<HeadRead> | null = null): UploadJob | null {
    if (this.state !== "collecting") return null;
    this.state = "sealed";
    const used = [...this.used];
    if (!keys.length || !used.length) {
      this.abandon();
      return null;
    }
    const misses = [...this.missed].filter((a) => !this.used.has(a));
    const id = `${packObject(keys[0]!)}#${process.pid}-${++jobSeq}`;
    // Bytes 0: the pack is uploaded from its file, never held in memory.
    return { key: id, size: 0, run: () => this.write(keys, { used, misses }, read, headAhead), dropped: () => this.abandon() };
  }

  /** The job will not run (the upload queue dropped or forgot it): the puts packed so far are thrown away. */
  abandon(): void {
    void this.puts.settle().then((f) => f?.discard());
  }

  private async write(keys: string[], cmd: CommandUse, read: ReadSide | null, headAhead: Promise<HeadRead> | null): Promise<void> {
    const early = await this.puts.settle();
    try {
      const ahead = headAhead && (await headAhead);
      if (ahead?.kind === "failed") {
        // Asked once already in this command: a bucket that did not answer is not waited for twice.
        this.d.metrics.inc("pack_upload_errors");
        this.d.logger.debug(`s3: pack upload: the head could not be read (${ahead.err.message}); no pack this time`);
        return;
      }
      // A reader that ran used the same answer and remembered it already.
      if (!read && ahead?.kind === "found") this.d.known.set(keys[0]!, ahead.head, ahead.bytes);
      await this.planAndUpload(keys, cmd, read ?? aheadSide(ahead), early);
    } finally {
      early?.discard();
    }
  }

  private async planAndUpload(keys: string[], { used, misses }: CommandUse, read: ReadSide | null, early: PackFileWriter | null): Promise<void> {
    const { metrics, logger } = this.d;
    const broken = read?.broken ?? new Set<string>();
    const known = read?.head ?? this.d.known.get(keys[0]!);
    if (known && planPack(known, used, broken).kind === "nothing") return;
    const fresh = await readHead(this.d, keys[0]!);
    if (fresh.kind === "failed") {
      metrics.inc("pack_upload_errors");
      logger.debug(`s3: pack upload: the head could not be read (${fresh.err.message}); no pack this time`);
      return;
    }
    if (fresh.kind === "found") this.d.known.set(keys[0]!, fresh.head, fresh.bytes);
    const head = fresh.kind === "found" ? fresh.head : null;
    const plan = planPack(head, used, broken);
    if (plan.kind === "nothing") return;
    if (plan.kind === "skip") {
      metrics.inc("pack_skipped");
      logger.debug(`s3: pack upload: ${plan.missing} new actions, but the head is full and this command used too little of it to compact`);
      return;
    }
    try {
      await this.upload(keys, plan, early, (packs) => nextMisses(plan.kind, misses, head, packs));
    } catch (err) {
      metrics.inc("pack_upload_errors");
      logger.debug(`${asRemoteError(err, "s3: pack upload").message}; no pack this time`);
    }
  }

  private async upload(keys: string[], plan: Exclude<PackPlan, { kind: "nothing" | "skip" }>, early: PackFileWriter | null, missesWith: (packs: PackRef[]) => string[]): Promise<void> {
    const { client, metrics } = this.d;
    const file = early ?? new PackFileWriter(packTempPath(this.d.dir), this.d.compress);
    try {
      const t0 = performance.now();
      const pack = await this.build(file, plan.ids);
      if (!pack) return;
      await client.put(packObject(pack.name), Bun.file(file.path), { contentType: "application/octet-stream" });
      const packs = plan.kind === "delta" ? [...plan.keep, pack] : [pack];
      if (packs[0] === pack) await this.putLeads(keys, pack, file.path);
      const misses = missesWith(packs);
      for (const key of keys) {
        const head: PackHead = { key, writtenMs: pack.writtenMs, packs, misses };
        const bytes = encodeHead(head);
        await client.put(headObject(key), bytes);
        this.d.known.set(key, head, bytes);
      }
      metrics.inc("pack_uploads");
      metrics.inc("pack_bytes_up", pack.bytes);
      metrics.inc("pack_entries_up", pack.entries.length);
      if (plan.kind === "compact") metrics.inc("pack_compactions");
      metrics.observe("pack_upload_seconds", (performance.now() - t0) / 1000);
    } finally {
      file.discard();
    }
  }

  /**
   * The lead of each key (store/packs.ts): the new first pack's first
   * segment again, from its file. None when that segment is one output too
   * large for a lead to be worth its upload.
   */
  private async putLeads(keys: string[], pack: PackRef, path: string): Promise<void> {
    const { client, metrics, logger } = this.d;
    const end = readerSegments(pack)[0]!.end;
    if (end > MAX_LEAD_BYTES) return;
    try {
      const bytes = new Uint8Array(await Bun.file(path).slice(0, end).arrayBuffer());
      await Promise.all(
        keys.map(async (key) => {
          await client.put(leadObject(key), bytes, { metadata: leadMeta(pack.name, end) });
          metrics.inc("pack_leads_up");
        }),
      );
    } catch (err) {
      metrics.inc("pack_lead_errors");
      logger.debug(`${asRemoteError(err, "s3: pack lead upload").message}; readers will fetch the first segment after the head`);
    }
  }

  /** Writes the plan's outputs into the pack file, in order. Null if none could be. */
  private async build(file: PackFileWriter, ids: string[]): Promise<PackRef | null> {
    const { disk, metrics } = this.d;
    const max = this.d.maxPackSize || Number.MAX_SAFE_INTEGER;
    let leftOut = 0;
    for (const actionID of ids) {
      if (this.puts.has(actionID)) continue;
      const local = disk.get(actionID);
      // Trimmed since, or too large to pack: a single object serves it.
      if (!local || !packable(local.size, this.d)) continue;
      // Bounded by raw bytes: what the pack holds once decompressed (its stored size is smaller).
      if (file.raw + local.size > max) {
        leftOut++;
        continue;
      }
      const bytes = await readOutput(local.diskPath, local.size);
      if (bytes) await file.add(actionID, entryMeta(actionID, local, this.d.costs), bytes);
    }
    if (leftOut) metrics.inc("pack_entries_left_out", leftOut);
    return file.entryCount ? file.finish(Date.now()) : null;
  }
}

/**
 * The pack file of a command's puts, added as they are stored, one at a
 * time in order. Any failure abandons it (the pack is then built whole at
 * the end, as without it).
 */
class PutsFile {
  private file: PackFileWriter | null = null;
  private readonly added = new Set<string>();
  private chain: Promise<void> = Promise.resolve();
  private state: "open" | "failed" = "open";

  constructor(private readonly d: PackWriterDeps) {}

  has(actionID: string): boolean {
    return this.state === "open" && this.added.has(actionID);
  }

  add(actionID: string, out: StoredOutput, body: Uint8Array | null): void {
    const max = this.d.maxPackSize || Number.MAX_SAFE_INTEGER;
    if (this.state !== "open" || !packable(out.size, this.d) || this.added.has(actionID)) return;
    this.chain = this.chain
      .then(async () => {
        if (this.state !== "open" || (this.file?.raw ?? 0) + out.size > max) return;
        const bytes = body ?? (await readOutput(out.diskPath, out.size));
        if (!bytes) return;
        this.file ??= new PackFileWriter(packTempPath(this.d.dir), this.d.compress);
        await this.file.add(actionID, entryMeta(actionID, out, this.d.costs), bytes);
        this.added.add(actionID);
      })
      .catch((err) => {
        this.state = "failed";
        this.d.logger.debug(`pack: packing puts as they come stopped (${(err as Error)?.message ?? err}); the pack is built at the end`);
      });
  }

  /** Waits for the puts queued so far; the file holding them, or null. */
  async settle(): Promise<PackFileWriter | null> {
    await this.chain;
    if (this.state === "open") return this.file;
    this.file?.discard();
    this.file = null;
    return null;
  }
}

/** An output's bytes, or null if the file is no longer what was stored. */
async function readOutput(path: string, size: number): Promise<Uint8Array | null> {
  if (size === 0) return new Uint8Array(0);
  try {
    const b = await Bun.file(path).bytes();
    return b.length === size ? b : null;
  } catch {
    return null;
  }
}

let jobSeq = 0;
