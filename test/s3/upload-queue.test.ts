// The upload queue (src/s3/upload-queue.ts) tells every job it will never
// run: a pack job holds a file of compressed outputs, which must go when
// its upload does not happen (dropped at enqueue, or forgotten by stop()
// at the flush deadline).
import { describe, expect, test } from "bun:test";
import { UploadQueue, type UploadJob } from "../../src/s3/upload-queue.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";

function queue(capacity: number, concurrency = 1) {
  return new UploadQueue({ capacity, concurrency, metrics: new Metrics(), logger: createLogger() });
}

/** A job that runs until released; records what happened to it. */
function job(key: string, log: string[]): UploadJob & { release(): void } {
  let release!: () => void;
  const done = new Promise<void>((r) => (release = r));
  return {
    key,
    size: 10,
    run: () => (log.push(`run ${key}`), done),
    dropped: () => void log.push(`dropped ${key}`),
    release: () => release(),
  };
}

describe("upload queue: jobs that never run are told so", () => {
  test("dropped at enqueue: a full queue, a duplicate key, a stopped queue", () => {
    const log: string[] = [];
    const q = queue(1);
    const a = job("a", log);
    expect(q.enqueue(a)).toBe(true); // runs at once
    expect(q.enqueue(job("b", log))).toBe(true); // waits
    expect(q.enqueue(job("c", log))).toBe(false); // full
    expect(q.enqueue(job("a", log))).toBe(false); // a key is taken once per run
    q.stop();
    expect(q.enqueue(job("d", log))).toBe(false);
    expect(log).toEqual(["run a", "dropped c", "dropped a", "dropped b", "dropped d"]);
    a.release();
  });

  test("forgotten by stop(): every waiting job is told, the running one is not, and no byte stays counted", async () => {
    const log: string[] = [];
    const q = queue(10);
    const running = job("r", log);
    q.enqueue(running);
    for (const k of ["w1", "w2", "w3"]) q.enqueue(job(k, log));
    expect(await q.flush(20)).toEqual({ left: 4 });
    expect(q.stop()).toBe(3);
    expect(log).toEqual(["run r", "dropped w1", "dropped w2", "dropped w3"]);
    running.release();
    await q.flush(1000);
    expect(q.bytes).toBe(0);
  });
});
