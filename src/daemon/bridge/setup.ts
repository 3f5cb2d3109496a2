// What a bridge (state-machine.ts) is given: its settings, and the outside
// world (sockets, stdin, stdout) through BridgeIO, so tests can drive it.

import type { CacheHandler } from "../../cacheprog/session.ts";
import type { DiskMark } from "../disk-mark.ts";
import type { Link, LinkEvents } from "./daemon-link.ts";
import type { WriteFd } from "./go-output.ts";
import type { LocalHits } from "./local-hits.ts";

export interface BridgeSetup {
  /** The daemon's address, for messages. */
  where: string;
  /** `go` has seen a capability line already (cli.ts printed ours). */
  capabilityPrinted: boolean;
  /** Sent first on every connection as `GOSTASH-AUTH <token>` when set. */
  token: string | null;
  /**
   * The hello line (daemon/hello.ts), sent to a daemon that takes one, and
   * how long its capability line may take before the daemon counts as
   * unreachable; null: nothing to say (and no wait).
   */
  hello?: { line: string; waitMs: number } | null;
  /** A daemon that owes answers and says nothing for this long is taken for stuck (stall-watch.ts); 0: never. */
  answerTimeoutMs?: number;
  /** Opens the local cache for a takeover; loaded only when needed. */
  openLocal(): Promise<{ handler: CacheHandler; where: string }>;
  /**
   * The daemon's disk, read here for local hits (local-hits.ts) when its
   * capability line offers it and this process sees it; null: not seen (or
   * turned off), every get goes to the daemon.
   */
  localHits?: ((disk: DiskMark) => LocalHits | null) | null;
}

/** The machine's outside world. */
export interface BridgeIO {
  /** Connects to the daemon; throws if it cannot be reached. */
  dial(events: LinkEvents): Promise<Link>;
  /** `go`'s requests (opened only once the first dial succeeded). */
  input(): ReadableStream<Uint8Array>;
  /** Log lines. */
  stderr(text: string): void;
  /** stdout, and its release after close is answered (default: fd 1). */
  writeOut?: WriteFd;
  releaseOut?: () => void;
}
