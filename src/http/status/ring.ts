// A fixed-size ring of timed samples, one column per named series: the
// memory of the status page's charts. Columns are Float64Arrays allocated
// once (capacity x series), so memory stays bounded however long the daemon
// runs; a series that appears later (a counter first counted after start)
// reads NaN for the samples before it, and the maxSeries cap keeps a flood
// of new names from growing it.

export interface SeriesRows {
  /** Sample times, ms since the epoch, oldest first. */
  t: number[];
  /** Values per series, aligned with t; null where the series had no value yet. */
  series: Record<string, (number | null)[]>;
}

export class SeriesRing {
  private readonly times: Float64Array;
  private readonly columns = new Map<string, Float64Array>();
  /** Index the next sample goes to. */
  private head = 0;
  private count = 0;

  constructor(
    readonly capacity: number,
    private readonly maxSeries = 64,
  ) {
    this.times = new Float64Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Time of the newest sample, or 0 when empty. */
  get lastTime(): number {
    return this.count ? this.times[(this.head - 1 + this.capacity) % this.capacity]! : 0;
  }

  push(t: number, values: Record<string, number>): void {
    const i = this.head;
    this.times[i] = t;
    for (const col of this.columns.values()) col[i] = NaN;
    for (const [name, v] of Object.entries(values)) {
      let col = this.columns.get(name);
      if (!col) {
        if (this.columns.size >= this.maxSeries) continue;
        this.columns.set(name, (col = new Float64Array(this.capacity).fill(NaN)));
      }
      col[i] = v;
    }
    this.head = (i + 1) % this.capacity;
    this.count = Math.min(this.count + 1, this.capacity);
  }

  /** Samples taken after `after` (ms since the epoch; 0: all), oldest first. */
  since(after = 0): SeriesRows {
    const idx: number[] = [];
    for (let k = 0; k < this.count; k++) {
      const i = (this.head - this.count + k + this.capacity) % this.capacity;
      if (this.times[i]! > after) idx.push(i);
    }
    const series: Record<string, (number | null)[]> = {};
    for (const [name, col] of this.columns) series[name] = idx.map((i) => (Number.isNaN(col[i]!) ? null : col[i]!));
    return { t: idx.map((i) => this.times[i]!), series };
  }
}
