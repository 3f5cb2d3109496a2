// One go command's view of the tiered cache (tiered.ts): the CacheHandler a
// GOCACHEPROG conversation talks to. Its gets and puts go to the shared
// tier with the command attached (CommandRun), so the command reads packs
// on its first local miss (pack-reader.ts) and, when it ends, writes a pack
// of what it used that no pack holds yet (pack-writer.ts).
//
// Plugin mode has one per process, and its close() also closes the tier:
// the pack job runs with the other uploads inside --flush-timeout. The
// daemon has one per connection (open.ts): close() only queues the pack
// job and returns, so the go command's close is answered at once and the
// upload runs in the background.
//
// The command's keys (store/packs.ts) are its first two distinct gets: it
// reads the head of the first and writes the head of both.

import type { Hit } from "../cacheprog/protocol.ts";
import type { CacheHandler, PutWriter } from "../cacheprog/session.ts";
import type { StoredOutput } from "../store/disk.ts";
import { packFilesDir } from "../store/pack-file.ts";
import { isPackKey } from "../store/packs.ts";
import { readHead, type HeadRead } from "./pack-heads.ts";
import { PackReader } from "./pack-reader.ts";
import { PackWriter } from "./pack-writer.ts";
import type { CommandRun, TieredCache } from "./tiered.ts";
import { ToolchainMark } from "./toolchain-mark.ts";

/** read-write: read and write packs; read-only: read them (--read-only, read-token connections); off: --no-prefetch. */
export type PackMode = "read-write" | "read-only" | "off";

export interface CommandOptions {
  packs: PackMode;
  /** Plugin mode: the command is the process, and its close closes the tier. */
  closesTier: boolean;
  /** The go command's toolchain (store/toolchain-marks.ts toolchainOf), when it is known: plugin mode. */
  toolchain?: string | null;
}

const KEYS = 2;

export function createCommandCache(tier: TieredCache, o: CommandOptions): CacheHandler {
  return new GoCommandCache(tier, o);
}

class GoCommandCache implements CacheHandler, CommandRun {
  private readonly keys: string[] = [];
  private reader: PackReader | null = null;
  private readonly writer: PackWriter | null;
  private readonly mark: ToolchainMark | null;
  /**
   * The head of the first key, asked for as soon as the key is known when
   * this command may write a pack and no head is known: it arrives while
   * the build runs, so a close with nothing new to pack does not wait for
   * it. The reader (a local miss) uses the same answer: one GET.
   */
  private headAhead: Promise<HeadRead> | null = null;
  /**
   * Whether the command has started anything that runs on the event loop
   * (a remote get, a put's upload, a head or pack download): until then
   * its gets are local hits answered at once, and the reader may block on
   * stdin (readMayBlock).
   */
  private loop: "unused" | "used" = "unused";

  constructor(
    private readonly tier: TieredCache,
    private readonly o: CommandOptions,
  ) {
    this.writer =
      o.packs === "read-write" && !tier.s3.readOnly
        ? new PackWriter({
            client: tier.client,
            disk: tier.disk,
            metrics: tier.metrics,
            logger: tier.logger,
            known: tier.knownHeads,
            dir: packFilesDir(tier.disk.dir),
            compress: tier.s3.compress,
            maxPackSize: tier.s3.maxPackSize ?? 0,
            maxPutSize: tier.s3.maxPutSize ?? 0,
            costs: tier.costs,
          })
        : null;
    const { client, metrics, logger } = tier;
    this.mark = o.toolchain ? new ToolchainMark({ client, metrics, logger, writes: !tier.s3.readOnly }, o.toolchain) : null;
  }

  get(actionID: string): Hit | null | Promise<Hit | null> {
    const r = this.tier.get(actionID, this);
    if (r instanceof Promise) this.loop = "used";
    return r;
  }

  put(actionID: string, outputID: string, size: number): PutWriter {
    this.loop = "used"; // its upload, and its pack file, run in the background
    return this.tier.put(actionID, outputID, size, this);
  }

  readMayBlock(): boolean {
    return this.loop === "unused";
  }

  async close(): Promise<void> {
    this.reader?.close();
    const job = this.writer?.seal(this.keys, this.reader, this.headAhead);
    // A job dropped (queue full or stopped) or forgotten (flush deadline) is counted by the queue and abandons its pack file.
    if (job) this.tier.client.uploads.enqueue(job);
    if (this.o.closesTier) await this.tier.close();
  }

  asked(actionID: string): void {
    if (this.keys.length >= KEYS || !isPackKey(actionID) || this.keys.includes(actionID)) return;
    this.keys.push(actionID);
    if (this.keys.length === 1 && this.writer && !this.tier.knownHeads.knows(actionID)) {
      this.headAhead = readHead(this.tier, actionID);
      this.loop = "used";
    }
  }

  packedOutput(actionID: string): StoredOutput | null {
    return this.reader?.landedOutput(actionID) ?? null;
  }

  landedFromPack(actionID: string): boolean {
    return this.reader?.landedHere(actionID) ?? false;
  }

  packs(): PackReader | null {
    if (this.o.packs === "off" || !this.keys.length) return null;
    this.reader ??= new PackReader(
      { client: this.tier.client, disk: this.tier.disk, metrics: this.tier.metrics, logger: this.tier.logger, known: this.tier.knownHeads, costs: this.tier.costs },
      this.keys[0]!,
      this.headAhead,
    );
    this.reader.start();
    this.loop = "used";
    return this.reader;
  }

  used(actionID: string): void {
    this.writer?.use(actionID);
  }

  stored(actionID: string, out: StoredOutput, body: Uint8Array | null): void {
    this.writer?.stored(actionID, out, body);
  }

  missed(actionID: string): void {
    this.writer?.miss(actionID);
  }

  lacksToolchain(): boolean | Promise<boolean> {
    return this.mark?.lacks() ?? false;
  }

  uploading(): void {
    this.mark?.uploading();
  }
}
