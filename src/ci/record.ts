// One go command's record for the run log (runlog.ts), kept by plugin mode
// and by connect. The go command line is read when the recorder is made:
// by the time the record is written the go command may have exited (it
// waits for our stdout to close, not for our exit).

import type { CostTracker } from "../buildcache/costs.ts";
import type { Metrics } from "../util/metrics.ts";
import { describeOutput } from "./describe.ts";
import { jobID, parentCommandLine, shownCommand } from "./job.ts";
import { RunStats } from "./run-stats.ts";
import { appendRun, type RunRecord } from "./runlog.ts";

export class RunRecorder {
  readonly stats = new RunStats();
  private readonly start = Math.round(performance.timeOrigin);
  private readonly argv = parentCommandLine();
  private readonly job = jobID();
  private stop: (() => void) | null = null;

  constructor(private readonly mode: RunRecord["mode"]) {}

  /** The go command's line as others may read it (ci/job.ts shownCommand), or null where the OS does not show it. */
  get shownCommand(): string | null {
    return shownCommand(this.argv);
  }

  /** Counts what this process serves from here on. */
  attach(tracker: CostTracker): void {
    this.stop?.();
    this.stop = tracker.listen((e) => this.stats.add(e));
  }

  /**
   * Appends the record to the run log in cacheDir. A plugin run that never
   * talked to the cache (`go env`, say) leaves no record. `bucketMetrics`:
   * this process's metrics when it had a bucket (its uploads are this
   * run's). Never throws.
   */
  finish(cacheDir: string, bucketMetrics: Metrics | null, extra: { daemon?: string } = {}): RunRecord | null {
    this.stop?.();
    const served = this.stop !== null && this.stats.counters.gets + this.stats.counters.puts > 0;
    if (this.mode === "plugin" && !served) return null;
    const rec: RunRecord = {
      v: 1,
      job: this.job,
      mode: this.mode,
      pid: process.pid,
      argv: this.argv,
      start: this.start,
      end: Date.now(),
      counters: served ? this.stats.counters : null,
      uploads: bucketMetrics && served ? uploadsOf(bucketMetrics) : null,
      slowest: this.stats.slowest.map((s) => ({ what: describeOutput(s.diskPath, s.size, s.next), costMs: s.costMs })),
      ...extra,
    };
    return appendRun(cacheDir, rec) ? null : rec;
  }
}

function uploadsOf(m: Metrics): NonNullable<RunRecord["uploads"]> {
  return { count: m.get("uploads"), bytes: m.get("bytes_up"), failed: m.get("upload_errors") + m.get("upload_drops"), left: m.get("upload_left") };
}
