// Who lands pack frames (pack-frame.ts): worker threads of the process
// (pack-land-worker.ts), shared by every pack reader of it, started when a
// go command first misses locally (start(), while its pack head is on the
// way); a frame goes to the thread with the least work queued.
//
// Why threads: a fresh machine's `go build std` lands 1,419 entries, 160
// MiB, as about 2,500 files. On the thread pool, one file operation per
// round trip, that took 1.2 s of CPU in a 1.0 s run while the go command
// waited; a worker does the same in one synchronous loop, and the main
// thread only reads the pack's bytes and answers the go command. Two
// threads, because one was busy for the whole run with the second core
// mostly idle (the go command mostly waits for entries).
//
// A thread that cannot start or dies fails the entries it had not
// reported (their gets fall back to single objects) and is not used again;
// with none left, frames land on the main thread (the same landFrame, one
// frame per turn of the event loop). Nothing is lost but speed.

import { availableParallelism } from "node:os";
import type { DiskStore } from "./disk.ts";
import { landFrame, type EntryResult, type FrameJob } from "./pack-frame.ts";
import type { LandReply, LandRequest } from "./pack-land-worker.ts";

export interface FrameLander {
  /** Starts the threads ahead of the first frame (a worker takes milliseconds to start). */
  start(): void;
  /** Lands the job's entries: each(i, result) once per entry, as soon as it is known; resolves after the last. */
  land(disk: DiskStore, job: FrameJob, each: (i: number, r: EntryResult) => void): Promise<void>;
}

/** Landing threads per process. */
const LANDING_THREADS = Math.max(1, Math.min(2, availableParallelism()));

interface Pending {
  disk: DiskStore;
  each: (i: number, r: EntryResult) => void;
  reported: boolean[];
  done: () => void;
}

let seq = 0;

/** One worker thread and the frames it was given. */
class LandingThread {
  readonly pending = new Map<number, Pending>();
  dead = false;
  private readonly worker: Worker;

  constructor(url: string) {
    this.worker = new Worker(url);
    this.worker.onmessage = (ev: MessageEvent<LandReply>) => this.reply(ev.data);
    this.worker.onerror = (ev) => this.die(`pack landing worker: ${ev.message || "failed"}`);
    this.worker.addEventListener("close", () => this.die("pack landing worker: exited"));
    this.worker.unref();
  }

  land(disk: DiskStore, job: FrameJob, each: (i: number, r: EntryResult) => void): Promise<void> {
    const id = ++seq;
    const stored = ownBuffer(job.stored);
    return new Promise<void>((done) => {
      this.pending.set(id, { disk, each, reported: job.entries.map(() => false), done });
      // Held by the process only while it has work: an idle worker never keeps a finished command alive.
      if (this.pending.size === 1) this.worker.ref();
      const req: LandRequest = { ...job, stored, id, dir: disk.dir, overflowDir: disk.overflowDir };
      this.worker.postMessage(req, [stored.buffer as ArrayBuffer]);
    });
  }

  private reply(m: LandReply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    if ("trouble" in m) return p.disk.trouble(Object.assign(new Error(m.trouble), { code: m.code }));
    if ("done" in m) return this.finish(m.id, "the landing worker skipped it");
    p.reported[m.i] = true;
    if (m.wrote) p.disk.wrote(m.wrote);
    p.each(m.i, m.r);
  }

  /** A frame is over: entries it did not report fail (not the pack's fault). */
  private finish(id: number, why: string): void {
    const p = this.pending.get(id)!;
    this.pending.delete(id);
    p.reported.forEach((r, i) => r || p.each(i, { ok: false, bad: false, message: why }));
    p.done();
    if (this.pending.size === 0 && !this.dead) this.worker.unref();
  }

  private die(why: string): void {
    if (this.dead) return;
    this.dead = true;
    this.worker.terminate();
    for (const id of [...this.pending.keys()]) this.finish(id, why);
  }
}

export interface LanderOptions {
  threads?: number;
  /** The worker's script (tests start others). */
  workerUrl?: string;
}

class WorkerLander implements FrameLander {
  private threads: LandingThread[] | null = null;

  constructor(private readonly o: LanderOptions) {}

  start(): void {
    this.threads ??= startThreads(this.o);
  }

  land(disk: DiskStore, job: FrameJob, each: (i: number, r: EntryResult) => void): Promise<void> {
    const live = (this.threads ??= startThreads(this.o)).filter((t) => !t.dead);
    if (!live.length) return landInline(disk, job, each);
    const idlest = live.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    return idlest.land(disk, job, each);
  }
}

function startThreads(o: LanderOptions): LandingThread[] {
  const url = o.workerUrl ?? new URL("./pack-land-worker.ts", import.meta.url).href;
  const threads: LandingThread[] = [];
  try {
    for (let i = 0; i < (o.threads ?? LANDING_THREADS); i++) threads.push(new LandingThread(url));
  } catch {
    // No worker here: what started is used, else frames land inline.
  }
  return threads;
}

/** The main-thread fallback: one frame per turn of the event loop. */
async function landInline(disk: DiskStore, job: FrameJob, each: (i: number, r: EntryResult) => void): Promise<void> {
  await new Promise((r) => setImmediate(r));
  landFrame(disk, job, each);
}

/** A transferable copy unless the bytes are their buffer's whole. */
function ownBuffer(b: Uint8Array): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b);
}

/** A lander with threads of its own (started at its first frame). */
export function createFrameLander(o: LanderOptions = {}): FrameLander {
  return new WorkerLander(o);
}

let shared: FrameLander | null = null;

/** The process's frame lander. */
export function frameLander(): FrameLander {
  return (shared ??= createFrameLander());
}
