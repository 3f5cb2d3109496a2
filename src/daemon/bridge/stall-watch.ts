// --answer-timeout: a daemon that owes answers and says nothing at all for
// that long is taken for stuck (stopped with SIGSTOP, a suspended machine,
// a deadlock). Its socket still accepts and takes bytes, so without this the
// go command would wait for it forever; the bridge takes the build over from
// the local cache instead (state-machine.ts).
//
// The clock runs only while something is owed, and restarts whenever the
// daemon shows it is alive: it says anything (a busy daemon answering other
// requests, or a slow one answering at all), or its socket takes what go
// sends (a long put on its way in: a stopped daemon's socket buffer fills
// and takes nothing more). One timer, re-armed lazily: the hot path (every
// request out, every chunk in) only writes a number.

export class StallWatch {
  /** When the daemon last said something while answers were owed (or when the first one became owed). */
  private since: number | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;

  /** ms 0: never fires. */
  constructor(
    private readonly ms: number,
    /** Answers are owed right now. */
    private readonly owed: () => boolean,
    private readonly fire: (quietMs: number) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A request went out. */
  sent(): void {
    if (this.ms <= 0 || this.since !== null) return;
    this.since = this.now();
    this.arm(this.ms);
  }

  /** The daemon said something, or took bytes sent to it. */
  alive(): void {
    if (this.since !== null) this.since = this.owed() ? this.now() : null;
  }

  stop(): void {
    this.since = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.check(), ms);
    this.timer.unref?.();
  }

  private check(): void {
    this.timer = null;
    if (this.since === null) return;
    if (!this.owed()) return void (this.since = null);
    const quiet = this.now() - this.since;
    if (quiet < this.ms) return this.arm(this.ms - quiet);
    this.stop();
    this.fire(quiet);
  }
}
