// A circuit breaker for a remote backend: after `threshold` failures in a
// row it opens and callers skip the backend for `cooldownMs`; then one trial
// call is let through (half-open). A success closes it; a failed trial opens
// it again with the cooldown doubled, up to `maxCooldownMs`.
//
// Only failures of the backend count (timeouts, connection errors, 5xx,
// auth); a miss (404) is a success.

export type BreakerState = "closed" | "open" | "half-open";

export interface BreakerOptions {
  threshold?: number;
  cooldownMs?: number;
  maxCooldownMs?: number;
  now?: () => number;
  /** Called each time the breaker opens. */
  onTrip?: (consecutiveFailures: number, cooldownMs: number) => void;
  /** Called when a trial succeeds and the breaker closes again. */
  onReset?: () => void;
}

export class Breaker {
  private failures = 0;
  private openedAt = 0;
  private cooldown: number;
  private trialInFlight = false;
  private _state: BreakerState = "closed";
  private readonly threshold: number;
  private readonly baseCooldown: number;
  private readonly maxCooldown: number;
  private readonly now: () => number;

  constructor(private readonly o: BreakerOptions = {}) {
    this.threshold = o.threshold ?? 5;
    this.baseCooldown = o.cooldownMs ?? 5_000;
    this.maxCooldown = o.maxCooldownMs ?? 60_000;
    this.cooldown = this.baseCooldown;
    this.now = o.now ?? Date.now;
  }

  get state(): BreakerState {
    if (this._state === "open" && this.now() - this.openedAt >= this.cooldown) this._state = "half-open";
    return this._state;
  }

  /**
   * May a call go out now? In half-open state only one trial at a time is
   * allowed; the caller must then report success() or failure().
   */
  allow(): boolean {
    const s = this.state;
    if (s === "closed") return true;
    if (s === "open") return false;
    if (this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  success(): void {
    this.failures = 0;
    this.trialInFlight = false;
    if (this._state !== "closed") {
      this._state = "closed";
      this.cooldown = this.baseCooldown;
      this.o.onReset?.();
    }
  }

  failure(): void {
    this.failures++;
    const s = this.state;
    if (s === "half-open") {
      this.trialInFlight = false;
      this.cooldown = Math.min(this.cooldown * 2, this.maxCooldown);
      this.trip();
    } else if (s === "closed" && this.failures >= this.threshold) {
      this.trip();
    }
  }

  private trip(): void {
    this._state = "open";
    this.openedAt = this.now();
    this.o.onTrip?.(this.failures, this.cooldown);
  }
}
