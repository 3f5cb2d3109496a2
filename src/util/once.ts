// An action that runs at most once however often it is asked for (a reader
// of a shared stream released by its end, its error or its cancel).

export class Once {
  private ran = false;

  constructor(private readonly fn: () => void) {}

  /** Has it run? */
  get done(): boolean {
    return this.ran;
  }

  /** Runs it the first time; later calls do nothing. */
  readonly run = (): void => {
    if (this.ran) return;
    this.ran = true;
    this.fn();
  };
}
