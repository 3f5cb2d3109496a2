// The order in which one go command's pack segments are fetched and landed
// (pack-reader.ts): one segment lands at a time, in line order, while the
// GETs of the next FETCH_AHEAD segments are already sent so their bytes are
// on the way. The go command asks for entries in about the order its pack
// holds them, so the segment it needs next gets the whole landing pipeline
// instead of sharing it with later ones (measured: with three landing at
// once, the first segment, the one asked for first, finished last). A
// segment a get is waiting for jumps the line.

/** A segment as the line sees it. Neither method rejects: failures are the job's to record. */
export interface LineJob {
  /** Sends the GET; resolves when its answer (or failure) is in. */
  open(): Promise<void>;
  /** Lands what open() got, entry by entry. */
  land(): Promise<void>;
  /** The line was closed before the job landed (its GET, if sent, is abandoned). */
  drop(): void;
}

/** Segments whose GET is sent while another lands. */
export const FETCH_AHEAD = 2;

interface Opened {
  job: LineJob;
  answer: Promise<void>;
}

export class SegmentLine {
  private readonly queue: LineJob[] = [];
  private readonly ahead: Opened[] = [];
  private driving = false;
  private closed = false;

  /** Jobs to land after those already in line. */
  push(jobs: LineJob[]): void {
    if (this.closed) {
      for (const j of jobs) j.drop();
      return;
    }
    this.queue.push(...jobs);
    void this.drive();
  }

  /** Lands this job next (after the one landing now). */
  prioritize(job: LineJob): void {
    if (this.closed) return;
    const inAhead = this.ahead.findIndex((o) => o.job === job);
    if (inAhead > 0) this.ahead.unshift(...this.ahead.splice(inAhead, 1));
    const queued = this.queue.indexOf(job);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
      this.ahead.unshift({ job, answer: job.open() });
    }
    void this.drive();
  }

  /** No more landings after the current one; jobs not landed are dropped. */
  close(): void {
    this.closed = true;
    for (const j of this.queue.splice(0)) j.drop();
    for (const o of this.ahead.splice(0)) o.job.drop();
  }

  private async drive(): Promise<void> {
    if (this.driving) return;
    this.driving = true;
    try {
      for (;;) {
        while (!this.closed && this.ahead.length < FETCH_AHEAD + 1 && this.queue.length) {
          const job = this.queue.shift()!;
          this.ahead.push({ job, answer: job.open() });
        }
        const next = this.ahead.shift();
        if (!next) return;
        await next.answer;
        if (this.closed) {
          next.job.drop();
          return;
        }
        await next.job.land();
      }
    } finally {
      this.driving = false;
    }
  }
}
