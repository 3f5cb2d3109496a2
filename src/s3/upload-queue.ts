// Background uploads to one bucket: a bounded FIFO with its own
// concurrency, shared by everything that writes to the bucket (build-cache
// objects and packs, the module mirror).
//
// enqueue() never blocks and never throws: a put is answered as soon as the
// local write is done, whatever the uploads are doing. Two limits: jobs
// waiting (capacity), and bytes waiting or being uploaded (capacityBytes; an
// upload may read its file into memory, so this also bounds that memory).
// Beyond either the new job is dropped and counted (upload_drops, and
// upload_drops_bytes for the byte limit); the file stays local. The first
// drop of each kind is a warning naming the flag that raises the limit.
// A key is taken at most once per run (dedupe), including keys marked as
// already in the bucket. flush() waits for the queue to drain, with a
// deadline, and says how many jobs were left.

import { formatBytes } from "../util/bytes.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";

export interface UploadJob {
  /** The object key: at most one upload per key per run. */
  key: string;
  /** Bytes it will send (counted against capacityBytes while queued or running). */
  size: number;
  /** Does the upload; a rejection is counted as upload_errors. */
  run(): Promise<void>;
  /** The job will never run: dropped by enqueue() (a duplicate, a full or stopped queue) or forgotten by stop(). Frees what it holds. */
  dropped?(): void;
}

export interface UploadQueueOptions {
  /** Jobs waiting (not counting those running); more are dropped. */
  capacity: number;
  /** Bytes of jobs waiting or running; more are dropped. 0: no limit. */
  capacityBytes?: number;
  concurrency: number;
  metrics: Metrics;
  logger: Logger;
}

export class UploadQueue {
  private readonly waiting: (UploadJob | undefined)[] = [];
  private queuedBytes = 0;
  private head = 0;
  private running = 0;
  private readonly seen = new Set<string>();
  private readonly warned = new Set<string>();
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly o: UploadQueueOptions) {
    o.metrics.gauge("upload_queue_depth", () => this.depth);
    o.metrics.gauge("upload_queue_bytes", () => this.queuedBytes);
  }

  /** Bytes of the jobs waiting or running. */
  get bytes(): number {
    return this.queuedBytes;
  }

  /** Jobs waiting to start. */
  get depth(): number {
    return this.waiting.length - this.head;
  }

  get inFlight(): number {
    return this.running;
  }

  /** Do not upload this key in this run (e.g. it was just downloaded from the bucket). */
  markSeen(key: string): void {
    this.seen.add(key);
  }

  has(key: string): boolean {
    return this.seen.has(key);
  }

  /** Returns false (and tells the job: dropped()) if it was a duplicate, dropped, or the queue is stopped. */
  enqueue(job: UploadJob): boolean {
    const taken = this.take(job);
    if (!taken) job.dropped?.();
    return taken;
  }

  private take(job: UploadJob): boolean {
    if (this.stopped || this.seen.has(job.key)) return false;
    if (this.depth >= this.o.capacity) return this.drop("upload_drops", `s3: the upload queue is full (${this.o.capacity} waiting); new outputs stay local`);
    const maxBytes = this.o.capacityBytes ?? 0;
    if (maxBytes > 0 && this.queuedBytes + job.size > maxBytes) {
      this.o.metrics.inc("upload_drops_bytes");
      return this.drop(
        "upload_drops_bytes",
        `s3: more than --upload-queue-bytes ${formatBytes(maxBytes)} (GOSTASH_UPLOAD_QUEUE_BYTES) waiting for upload; new outputs stay local`,
      );
    }
    this.seen.add(job.key);
    this.queuedBytes += job.size;
    this.waiting.push(job);
    this.pump();
    return true;
  }

  /** Counts a dropped job; the first drop of each kind is a warning. */
  private drop(counter: string, message: string): false {
    this.o.metrics.inc("upload_drops");
    if (this.warned.has(counter)) this.o.logger.debug(message);
    else {
      this.warned.add(counter);
      this.o.logger.warn(`${message} (counted in ${counter} from now on)`);
    }
    return false;
  }

  private pump(): void {
    while (!this.stopped && this.running < this.o.concurrency && this.depth > 0) {
      const job = this.waiting[this.head]!;
      this.waiting[this.head++] = undefined;
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting.splice(0, this.head);
        this.head = 0;
      }
      this.running++;
      let p: Promise<void>;
      try {
        p = job.run();
      } catch (err) {
        p = Promise.reject(err);
      }
      p.catch((err) => {
        this.o.metrics.inc("upload_errors");
        this.o.logger.debug(`s3: upload ${job.key}: ${(err as Error)?.message ?? err}`);
      }).finally(() => {
        this.running--;
        this.queuedBytes -= job.size;
        this.pump();
      });
    }
    if (this.running === 0 && this.depth === 0) this.wakeIdle();
  }

  private wakeIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  /** Waits until every job has run, or timeoutMs passed. */
  async flush(timeoutMs: number): Promise<{ left: number }> {
    if (this.running === 0 && this.depth === 0) return { left: 0 };
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise<void>((r) => this.idleWaiters.push(r)),
      new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, timeoutMs)))),
    ]);
    clearTimeout(timer);
    return { left: this.depth + this.running };
  }

  /** Start nothing more; waiting jobs are forgotten (each told: dropped()). Returns how many. */
  stop(): number {
    this.stopped = true;
    const n = this.depth;
    const forgotten = this.waiting.slice(this.head) as UploadJob[];
    for (const job of forgotten) this.queuedBytes -= job.size;
    this.waiting.length = 0;
    this.head = 0;
    for (const job of forgotten) job.dropped?.();
    this.wakeIdle();
    return n;
  }
}
