// The build cache with a shared S3 tier behind the local disk: the policy
// (which tier answers, when to give up, what to upload). The objects' layout
// and integrity check live in store/s3-objects.ts; every request goes
// through s3/client.ts (timeouts, retries, breaker, region).
//
// get: the local disk first (synchronous, no promise); on a local miss, one
//   GET of the action object, verified while it lands in the local store.
//   Concurrent gets of one action share one download (util/singleflight).
//   Every remote problem (timeout, refused connection, 5xx, auth, a cut or
//   altered body) is a miss plus a metric; the client's circuit breaker
//   skips S3 for a while after repeated failures.
// put: written locally and answered at once; the upload happens later
//   through the client's bounded queue. Outputs below --min-upload-size or
//   above --max-put-size stay local (the go command needs a DiskPath for
//   every put: an error answer fails `go build` itself, through the module
//   index); --read-only never writes.
// Limits: a get the shared tier has not served within --request-timeout is
//   answered as a miss (request_timeouts); the download goes on and lands
//   in the local store for the next get. Each limit says once (warning)
//   which flag raises it, and counts every time.
// close: flushes the uploads with a deadline (--flush-timeout) and counts
//   what was left (upload_left). The daemon never closes the shared cache
//   per connection; it flushes on shutdown.
// packs: a get or put may come with the go command it belongs to
//   (CommandRun, command.ts): a local miss then first asks that command's
//   pack reader, inside the same single-flight as the per-action GET, so a
//   get for an entry a pack is bringing waits for it and nothing is fetched
//   twice; the command learns what it used (for its own pack,
//   pack-writer.ts).

import type { Hit } from "../cacheprog/protocol.ts";
import type { CacheHandler, PutWriter } from "../cacheprog/session.ts";
import type { S3Config } from "../config/config.ts";
import { formatBytes } from "../util/bytes.ts";
import type { S3Client } from "../s3/client.ts";
import { asRemoteError } from "../s3/errors.ts";
import type { CostBook } from "../store/costs.ts";
import type { DiskStore, StoredOutput } from "../store/disk.ts";
import { headCopiesDir } from "../store/head-copies.ts";
import { packFilesDir } from "../store/pack-file.ts";
import { actionObject, downloadOutput, uploadOutput, type EncodedOutput, type OutputFile } from "../store/s3-objects.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import { Semaphore } from "../util/semaphore.ts";
import { SingleFlight } from "../util/singleflight.ts";
import { countGet, localPut } from "./local.ts";
import { KnownHeads } from "./pack-heads.ts";
import type { PackReader } from "./pack-reader.ts";

export interface TieredOptions {
  disk: DiskStore;
  client: S3Client;
  s3: S3Config;
  metrics: Metrics;
  logger: Logger;
  /** Action costs (costs.ts): uploaded with each object, recorded from each download. */
  costs?: CostBook;
}

/** Where a get was answered from: the local disk, a pack, or a per-action object. */
export type HitSource = "local" | "pack" | "remote";

/** The go command a get or put belongs to (command.ts). */
export interface CommandRun {
  /** Every get, before it is answered. */
  asked(actionID: string): void;
  /** An output this command's packs landed on the local disk (known without reading it back), or null. */
  packedOutput(actionID: string): StoredOutput | null;
  /** A local hit: was it landed by one of this command's packs, and not reported yet? */
  landedFromPack(actionID: string): boolean;
  /** A get the local disk could not answer: the packs that may bring it (null: none). */
  packs(): PackReader | null;
  /** An action this command used: a hit of any tier, or a put. */
  used(actionID: string): void;
  /** A put of this command, stored on the local disk; body: its bytes, when the put kept them. */
  stored(actionID: string, out: StoredOutput, body: Uint8Array | null): void;
  /** A get the bucket answered has no output (not a get that timed out or failed). */
  missed(actionID: string): void;
  /** The bucket holds no outputs of this command's toolchain (toolchain-mark.ts): a local miss is a miss. */
  lacksToolchain(): boolean | Promise<boolean>;
  /** An output of this command goes to the bucket. */
  uploading(): void;
}

export interface TieredCache extends CacheHandler {
  get(actionID: string, run?: CommandRun | null): Hit | null | Promise<Hit | null>;
  put(actionID: string, outputID: string, size: number, run?: CommandRun | null): PutWriter;
  /** Waits for pending uploads, at most timeoutMs; returns how many were left. */
  flush(timeoutMs: number): Promise<{ left: number }>;
  readonly client: S3Client;
  readonly disk: DiskStore;
  readonly s3: S3Config;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** The pack heads this process last read or wrote. */
  readonly knownHeads: KnownHeads;
  /** Action costs (costs.ts), when time saved is measured. */
  readonly costs: CostBook | undefined;
}

interface Fetched {
  out: StoredOutput;
  source: "pack" | "remote";
}

/**
 * What the shared tier said about an action: its output, "absent" (the
 * bucket answered that it has none, or the head lists it as a known miss),
 * or "unknown" (no answer: a timeout, an error, the breaker, a bad object).
 * Only "absent" may become a known miss of the command's pack head: an
 * action the bucket holds must not be listed as one it lacks.
 */
type RemoteAnswer = Fetched | "absent" | "unknown";

/**
 * Put bodies up to this size stay in memory for their upload and their pack
 * (what std's outputs mostly are) instead of being read back from the
 * file just written: 1,419 reads, a tenth of a second of the main thread,
 * in a cold `go build std`. The upload queue's byte limit bounds them.
 */
const KEPT_BODY_MAX = 4 << 20;

export function createTieredCache(o: TieredOptions): TieredCache {
  return new Tiers(o);
}

class Tiers implements TieredCache {
  readonly client: S3Client;
  readonly disk: DiskStore;
  readonly s3: S3Config;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly knownHeads: KnownHeads;
  private readonly downloads: Semaphore;
  private readonly flights = new SingleFlight<RemoteAnswer>();
  private readonly warnOnce: (what: string, message: string) => void;
  readonly costs: CostBook | undefined;

  constructor(o: TieredOptions) {
    ({ disk: this.disk, client: this.client, s3: this.s3, metrics: this.metrics, logger: this.logger, costs: this.costs } = o);
    this.downloads = new Semaphore(Math.max(1, o.s3.concurrency));
    this.warnOnce = onceWarner(o.logger);
    const where = `${o.s3.endpoint ?? ""}\n${o.client.bucket}\n${o.client.key("")}`;
    this.knownHeads = new KnownHeads({ dir: headCopiesDir(packFilesDir(o.disk.dir), where) });
  }

  get(actionID: string, run: CommandRun | null = null): Hit | null | Promise<Hit | null> {
    const t0 = performance.now();
    this.metrics.inc("gets");
    run?.asked(actionID);
    const packed = run?.packedOutput(actionID);
    if (packed) {
      run!.used(actionID);
      countGet(this.metrics, t0, packed, "pack");
      return { ...packed, from: "pack" };
    }
    const hit = this.disk.get(actionID);
    if (hit) {
      run?.used(actionID);
      if (!run?.landedFromPack(actionID)) {
        countGet(this.metrics, t0, hit, "local");
        return hit;
      }
      countGet(this.metrics, t0, hit, "pack");
      return { ...hit, from: "pack" };
    }
    return this.deadline(this.remote(actionID, run)).then((h) => {
      if (typeof h === "string") {
        if (h === "absent") run?.missed(actionID);
        countGet(this.metrics, t0, null, "remote");
        return null;
      }
      run?.used(actionID);
      countGet(this.metrics, t0, h.out, h.source);
      return { ...h.out, from: h.source };
    });
  }

  put(actionID: string, outputID: string, size: number, run: CommandRun | null = null): PutWriter {
    run?.used(actionID);
    const upload = this.wantsUpload(size);
    if (!upload && !run) return localPut(this.disk, this.metrics, actionID, outputID, size);
    // Uploaded once stored, with the entry's own time (a fresh runner's hit carries it).
    const stored = (out: StoredOutput, body: Uint8Array | null) => {
      run?.stored(actionID, out, body);
      if (!upload) return;
      run?.uploading();
      const f: OutputFile = { actionID, ...out, costMs: this.costs?.get(actionID), bytes: body ?? undefined };
      this.client.uploads.enqueue({ key: this.client.key(actionObject(actionID)), size, run: () => this.upload(f) });
    };
    return localPut(this.disk, this.metrics, actionID, outputID, size, stored, size <= KEPT_BODY_MAX);
  }

  flush(ms: number): Promise<{ left: number }> {
    return this.client.uploads.flush(ms);
  }

  async close(): Promise<void> {
    const s3 = this.s3;
    try {
      const { left } = await this.client.uploads.flush(s3.flushTimeoutMs);
      if (left > 0) {
        this.metrics.inc("upload_left", left);
        this.logger.warn(`s3: ${left} upload(s) not finished within the flush deadline of ${s3.flushTimeoutMs}ms; they stay local`);
      }
      this.client.uploads.stop();
    } finally {
      this.client.close();
    }
  }

  /**
   * One download per action at a time, shared by every go command asking:
   * from a pack on its way (if the asking command's packs list it), else
   * the per-action object, unless the bucket holds nothing of the asking
   * command's toolchain.
   */
  private remote(actionID: string, run: CommandRun | null): Promise<RemoteAnswer> {
    const packs = run?.packs() ?? null;
    return this.flights.do(actionID, async () => {
      const fromPack = await packs?.wait(actionID);
      if (fromPack) return { out: fromPack, source: "pack" } as const;
      if (packs?.knownMiss(actionID)) {
        // The commands that wrote the head asked for it too and could not store it (a link).
        this.metrics.inc("pack_known_misses");
        return "absent";
      }
      if (run && (await run.lacksToolchain())) {
        // No machine has uploaded outputs of this go version and platform: no GET can hit.
        this.metrics.inc("toolchain_misses");
        return "absent";
      }
      const out = await this.remoteGet(actionID);
      return typeof out === "string" ? out : { out, source: "remote" };
    }).promise;
  }

  private async remoteGet(actionID: string): Promise<StoredOutput | "absent" | "unknown"> {
    const { metrics, client } = this;
    if (client.breaker.state === "open") {
      // Not even queued for a download slot while the bucket is resting.
      metrics.inc("remote_skipped");
      return "unknown";
    }
    await this.downloads.acquire();
    metrics.inc("remote_gets");
    const t0 = performance.now();
    try {
      const out = await downloadOutput(client, this.disk, actionID, (n) => metrics.inc("bytes_down", n));
      if (!out) {
        metrics.inc("remote_misses");
        return "absent";
      }
      // It came from the bucket: no need to send it back.
      client.uploads.markSeen(client.key(actionObject(actionID)));
      if (out.costMs !== undefined) this.costs?.record(actionID, out.costMs);
      return out;
    } catch (err) {
      this.remoteFailed(err, actionID);
      return "unknown";
    } finally {
      this.downloads.release();
      metrics.observe("remote_get_seconds", (performance.now() - t0) / 1000);
    }
  }

  private remoteFailed(err: unknown, actionID: string): void {
    const e = asRemoteError(err, `s3: get ${actionID}`);
    if (e.kind === "badobject") {
      this.metrics.inc("integrity_failures");
      this.logger.warn(`${e.message}; treated as a miss`);
      return;
    }
    if (e.kind === "unavailable") {
      this.metrics.inc("remote_skipped");
      return;
    }
    this.metrics.inc("remote_errors");
    this.metrics.inc(`remote_errors_${e.kind}`);
  }

  /** Answers "unknown" (a miss for the go command) if the remote get takes longer than --request-timeout. */
  private deadline(p: Promise<RemoteAnswer>): Promise<RemoteAnswer> {
    const ms = this.s3.requestTimeoutMs ?? 0;
    if (ms <= 0) return p;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.metrics.inc("request_timeouts");
        this.warnOnce(
          "request_timeouts",
          `s3: a get took longer than --request-timeout ${ms}ms (GOSTASH_REQUEST_TIMEOUT); answered as a miss, the download goes on in the background`,
        );
        resolve("unknown");
      }, ms);
      const settle = (h: RemoteAnswer) => {
        clearTimeout(t);
        resolve(h);
      };
      p.then(settle, () => settle("unknown"));
    });
  }

  private async upload(f: OutputFile): Promise<void> {
    const t0 = performance.now();
    let enc: EncodedOutput | null;
    try {
      enc = await uploadOutput(this.client, f, this.s3.compress);
    } catch (err) {
      const e = asRemoteError(err, `s3: put ${f.actionID}`);
      this.metrics.inc("upload_errors");
      if (e.kind === "unavailable") this.metrics.inc("upload_skipped_breaker");
      this.logger.debug(`${e.message}; not uploaded`);
      return;
    }
    if (enc === null) {
      // Trimmed or cleaned away since the put: nothing to upload.
      this.metrics.inc("upload_errors");
      return;
    }
    this.metrics.inc("uploads");
    this.metrics.inc("bytes_up", enc.body.length);
    this.metrics.observe("upload_seconds", (performance.now() - t0) / 1000);
  }

  /** Is this output to be uploaded at all? Counts and warns about the limit it hits. */
  private wantsUpload(size: number): boolean {
    if (this.s3.readOnly || size < this.s3.minUploadSize) return false;
    const max = this.s3.maxPutSize ?? 0;
    if (max > 0 && size > max) {
      this.metrics.inc("puts_over_limit");
      this.warnOnce(
        "puts_over_limit",
        `s3: an output of ${formatBytes(size)} is over --max-put-size ${formatBytes(max)} (GOSTASH_MAX_PUT_SIZE); kept on the local disk only, not uploaded`,
      );
      return false;
    }
    return true;
  }
}

/** The first time a limit is reached it is a warning naming its flag; later only counted. */
function onceWarner(logger: Logger): (what: string, message: string) => void {
  const warned = new Set<string>();
  return (what, message) => {
    if (warned.has(what)) return logger.debug(message);
    warned.add(what);
    logger.warn(`${message} (counted in ${what} from now on)`);
  };
}
