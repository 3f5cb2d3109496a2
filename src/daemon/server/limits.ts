// Connection limits of the plugin socket (all optional, 0 means none):
// - maxConnections: a connection beyond it gets one line
//   `GOSTASH-ERROR busy: ...` (naming --max-connections) and is closed; the
//   bridge then builds from its local cache (connections_refused);
// - maxInflight: backpressure per connection (session-input.ts);
// - idleTimeoutMs: a connection that sent nothing for that long and is owed
//   nothing is closed (connections_idle_closed). The bridge treats a close
//   with nothing pending as routine and dials again when its go command
//   next asks for something (src/daemon/bridge.ts).

import { ERROR_PREFIX } from "../../auth/token.ts";
import type { Logger } from "../../util/log.ts";
import type { Metrics } from "../../util/metrics.ts";

/** A client that does not hang up after our refusal or idle close is cut off after this long. */
export const HANGUP_GRACE_MS = 2000;

/** Decides whether one more connection may open (--max-connections). */
export class Admission {
  private warned = false;

  constructor(
    private readonly maxConnections: number,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  /** The line refusing connection id when `open` are open already, or null to let it in. */
  refusal(id: number, open: number): string | null {
    if (this.maxConnections <= 0 || open < this.maxConnections) return null;
    this.metrics.inc("connections_refused");
    const why = `busy: too many connections (${open} open; raise --max-connections / GOSTASH_MAX_CONNECTIONS, now ${this.maxConnections})`;
    // Said once as a warning; a daemon at its limit would otherwise flood its log.
    if (!this.warned) this.logger.warn(`serve: connection ${id}: refused: ${why} (counted in connections_refused from now on)`);
    else this.logger.debug(`serve: connection ${id}: refused: ${why}`);
    this.warned = true;
    return `${ERROR_PREFIX}${why}\n`;
  }
}

/**
 * Closes a connection that sent nothing for idleMs and is owed nothing
 * (--idle-timeout); one that is owed something is looked at again later.
 */
export class IdleWatch {
  /** Date.now() of the last byte in or answer out. */
  private lastActive = Date.now();
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly idleMs: number,
    /** Something is owed to the client, or held from it. */
    private readonly busy: () => boolean,
    private readonly onIdle: (quietMs: number) => void,
  ) {
    if (idleMs > 0) this.arm(idleMs);
  }

  /** Traffic: the connection is not idle. */
  touch(): void {
    this.lastActive = Date.now();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.check(), ms);
  }

  private check(): void {
    this.timer = null;
    const quiet = Date.now() - this.lastActive;
    const busy = this.busy();
    if (busy || quiet < this.idleMs) return this.arm(busy ? this.idleMs : this.idleMs - quiet);
    this.onIdle(quiet);
  }
}
