// One go command's pack upload (layout: store/packs.ts; what goes in:
// pack-policy.ts).
//
// While the command runs, the writer records the actions it used (hits of
// any tier and puts, in the order of first use) and keeps the encoded
// bodies its single-object uploads produce (store/pack-file.ts: the zstd
// work is done once). When the command ends, seal() gives the job that
// writes the pack, run by the bucket's upload queue in the background like
// any upload: plugin mode's close waits for it within --flush-timeout, as
// for every upload; the daemon answers the go command's close first.
//
// The job: (1) if the head this process knows already packs everything the
// command used, stop: no request at all. (2) Read the head afresh (one GET:
// another machine may have written since). (3) Plan (nothing, delta,
// compact or skip). (4) Build the pack file in use order: kept bodies, or
// outputs read and encoded from the local store; outputs over 64 MiB stay
// single objects, and entries beyond --max-pack-size are left out. (5) PUT
// the pack, then the head under each of the command's keys: the head is
// written last, so a reader never sees a head naming a pack that is not
// complete. Any failure only means no pack this time (counted).

import type { UploadJob } from "../s3/upload-queue.ts";
import type { S3Client } from "../s3/client.ts";
import type { DiskStore } from "../store/disk.ts";
import { EncodedSpool, PackFileWriter, packTempPath } from "../store/pack-file.ts";
import { encodeHead, headObject, packObject, type PackHead, type PackRef } from "../store/packs.ts";
import { encodeOutput, MAX_ENCODED_OUTPUT, type EncodedOutput } from "../store/s3-objects.ts";
import { asRemoteError } from "../s3/errors.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { readHead, type KnownHeads } from "./pack-heads.ts";
import { planPack, type PackPlan } from "./pack-policy.ts";

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
}

/** What the reader learned that the writer needs: the head it read, and packs that failed. */
export interface ReadSide {
  readonly head: PackHead | null;
  readonly broken: ReadonlySet<string>;
}

type WriterState = "collecting" | "sealed";

export class PackWriter {
  private readonly used = new Set<string>();
  private spool: EncodedSpool | null = null;
  private state: WriterState = "collecting";

  constructor(private readonly d: PackWriterDeps) {}

  /** The command used this action (a hit of any tier, or a put). */
  use(actionID: string): void {
    if (this.state === "collecting") this.used.add(actionID);
  }

  /** A single-object upload of this command encoded an output: kept for the pack. */
  offer(actionID: string, enc: EncodedOutput): void {
    if (this.state !== "collecting" || enc.meta.size > MAX_ENCODED_OUTPUT) return;
    this.spool ??= new EncodedSpool(packTempPath(this.d.dir, "spool"), this.d.maxPackSize || Number.MAX_SAFE_INTEGER);
    this.spool.add(actionID, enc.meta, enc.body);
  }

  /**
   * The command ended. Returns the upload job (for the bucket's queue), or
   * null if it used nothing. `keys`: the command's first distinct gets.
   */
  seal(keys: string[], read: ReadSide | null): UploadJob | null {
    if (this.state !== "collecting") return null;
    this.state = "sealed";
    const used = [...this.used];
    if (!keys.length || !used.length) {
      this.spool?.close();
      return null;
    }
    const id = `${packObject(keys[0]!)}#${process.pid}-${++jobSeq}`;
    // Bytes 0: the pack is uploaded from its file, never held in memory.
    return { key: id, size: 0, run: () => this.write(keys, used, read).finally(() => this.spool?.close()) };
  }

  private async write(keys: string[], used: string[], read: ReadSide | null): Promise<void> {
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
    const head = fresh.kind === "found" ? fresh.head : null;
    const plan = planPack(head, used, broken);
    if (plan.kind === "nothing") return;
    if (plan.kind === "skip") {
      metrics.inc("pack_skipped");
      logger.debug(`s3: pack upload: ${plan.missing} new actions, but the head is full and this command used too little of it to compact`);
      return;
    }
    try {
      await this.upload(keys, plan);
    } catch (err) {
      metrics.inc("pack_upload_errors");
      logger.debug(`${asRemoteError(err, "s3: pack upload").message}; no pack this time`);
    }
  }

  private async upload(keys: string[], plan: Exclude<PackPlan, { kind: "nothing" | "skip" }>): Promise<void> {
    const { client, metrics } = this.d;
    const file = new PackFileWriter(packTempPath(this.d.dir, "pack"));
    try {
      const t0 = performance.now();
      const pack = await this.build(file, plan.ids);
      if (!pack) return;
      await client.put(packObject(pack.name), Bun.file(file.path), { contentType: "application/octet-stream" });
      const packs = plan.kind === "delta" ? [...plan.keep, pack] : [pack];
      for (const key of keys) {
        const head: PackHead = { key, writtenMs: pack.writtenMs, packs };
        await client.put(headObject(key), encodeHead(head));
        this.d.known.set(key, head);
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

  /** Writes the plan's outputs into the pack file, in order. Null if none could be. */
  private async build(file: PackFileWriter, ids: string[]): Promise<PackRef | null> {
    const { disk, metrics } = this.d;
    const max = this.d.maxPackSize || Number.MAX_SAFE_INTEGER;
    let leftOut = 0;
    for (const actionID of ids) {
      const local = disk.get(actionID);
      // Trimmed since, or too large to pack: a single object serves it.
      if (!local || local.size > MAX_ENCODED_OUTPUT) continue;
      const enc = this.spool?.take(actionID, local.outputID) ?? (await encodeOutput({ actionID, ...local }, this.d.compress));
      if (!enc) continue;
      if (file.bytes + enc.body.length > max) {
        leftOut++;
        continue;
      }
      file.append(actionID, enc.meta, enc.body);
    }
    if (leftOut) metrics.inc("pack_entries_left_out", leftOut);
    return file.entryCount ? file.finish(Date.now()) : null;
  }
}

let jobSeq = 0;
