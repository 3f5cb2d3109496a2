// Background uploads: a bounded FIFO with its own concurrency.
//
// enqueue() never blocks and never throws: a put is answered as soon as the
// local write is done, whatever the uploads are doing. Two limits: jobs
// waiting (capacity), and bytes waiting or being uploaded (capacityBytes; an
// upload reads its output into memory, so this also bounds that memory).
// Beyond either the new job is dropped and counted (upload_drops, and
// upload_drops_bytes for the byte limit); the output stays local. A key is taken at
// most once per run (dedupe), including keys marked as already remote.
// flush() waits for the queue to drain, with a deadline, and says how many
// jobs were left.

import type { Metrics } from "../util/metrics.ts";

export interface UploadQueueOptions<T> {
  /** Jobs waiting (not counting those running); more are dropped. */
  capacity: number;
  /** Bytes of jobs waiting or running (sizeOf); more are dropped. 0: no limit. */
  capacityBytes?: number;
  sizeOf?(job: T): number;
  /** A job was dropped because a limit was reached (after it was counted). */
  onDrop?(limit: "count" | "bytes", job: T): void;
  concurrency: number;
  run(job: T): Promise<void>;
  metrics: Metrics;
  /** A job's run() threw (it has already been counted by the caller or not). */
  onError?(err: unknown, job: T): void;
}

export class UploadQueue<T> {
  private readonly waiting: { key: string; job: T; size: number }[] = [];
  private queuedBytes = 0;
  private head = 0;
  private running = 0;
  private readonly seen = new Set<string>();
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly o: UploadQueueOptions<T>) {
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

  /** Do not upload this key in this run (e.g. it was just downloaded). */
  markSeen(key: string): void {
    this.seen.add(key);
  }

  has(key: string): boolean {
    return this.seen.has(key);
  }

  /** Returns false if the job was a duplicate, dropped, or the queue is stopped. */
  enqueue(key: string, job: T): boolean {
    if (this.stopped || this.seen.has(key)) return false;
    if (this.depth >= this.o.capacity) {
      this.o.metrics.inc("upload_drops");
      this.o.onDrop?.("count", job);
      return false;
    }
    const size = this.o.sizeOf?.(job) ?? 0;
    const maxBytes = this.o.capacityBytes ?? 0;
    if (maxBytes > 0 && this.queuedBytes + size > maxBytes) {
      this.o.metrics.inc("upload_drops");
      this.o.metrics.inc("upload_drops_bytes");
      this.o.onDrop?.("bytes", job);
      return false;
    }
    this.seen.add(key);
    this.queuedBytes += size;
    this.waiting.push({ key, job, size });
    this.pump();
    return true;
  }

  private pump(): void {
    while (!this.stopped && this.running < this.o.concurrency && this.depth > 0) {
      const item = this.waiting[this.head]!;
      this.waiting[this.head++] = undefined as never;
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting.splice(0, this.head);
        this.head = 0;
      }
      this.running++;
      let p: Promise<void>;
      try {
        p = this.o.run(item.job);
      } catch (err) {
        p = Promise.reject(err);
      }
      p.catch((err) => this.o.onError?.(err, item.job)).finally(() => {
        this.running--;
        this.queuedBytes -= item.size;
        this.pump();
        if (this.running === 0 && this.depth === 0) this.wakeIdle();
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

  /** Start nothing more; waiting jobs are forgotten. Returns how many. */
  stop(): number {
    this.stopped = true;
    const n = this.depth;
    for (let i = this.head; i < this.waiting.length; i++) this.queuedBytes -= this.waiting[i]!.size;
    this.waiting.length = 0;
    this.head = 0;
    this.wakeIdle();
    return n;
  }
}
