// `gostash connect`: the bridge between a `go` command (our stdin/stdout)
// and the daemon's plugin socket.
//
// Bytes are copied both ways: stdin -> socket with backpressure towards `go`
// (bridge/daemon-link.ts); socket -> stdout in whole lines, synchronously,
// with backpressure towards the daemon (bridge/go-output.ts, relay.ts). On
// EOF on stdin everything is sent, then the socket's write side is shut
// down (half-close); the daemon answers what is pending and hangs up.
//
// To survive the daemon going away mid-build (stopped, restarted, killed),
// the bridge keeps a light view of the conversation: every request it
// forwarded that the daemon has not answered yet, with its raw bytes
// (RequestStreamTracker, src/cacheprog/framing.ts).
//
// If the daemon hangs up before `go` is done:
// - with nothing unanswered (the daemon closes connections idle for
//   --idle-timeout, e.g. while `go` links or runs a long test), nothing is
//   said: the bridge dials again when `go` sends its next request;
// - with requests unanswered, it dials again at once and replays them, in
//   their original order (gets and puts are idempotent, so one the daemon
//   had already handled does no harm);
// - if that dial fails (the daemon is gone), or the daemon keeps hanging up
//   without answering anything (MAX_REDIALS), or a put too large to have
//   been kept is unanswered, the bridge takes over in-process from the
//   local disk cache (bridge/takeover.ts). One line on stderr says what
//   happened.
//
// A daemon can also be there and not answer: stopped (SIGSTOP), on a
// suspended machine, stuck. Its socket still accepts, so two clocks keep a
// go command from waiting on it forever: its capability line must come
// within --dial-timeout of the connection (when the bridge has a hello to
// send, so it waits for that line), and a daemon that owes answers and
// says nothing at all for --answer-timeout is taken for gone: the local
// cache answers the rest (bridge/stall-watch.ts).
//
// Access control: with a token (--token / GOSTASH_TOKEN) the bridge's first
// bytes on every connection are `GOSTASH-AUTH <token>\n` (src/auth/token.ts).
// A daemon that refuses the client (bad token, --max-connections) says so in
// one line that `go` never sees (bridge/relay.ts); the bridge says once on
// stderr why and serves the build from the local cache (the same takeover),
// so the build still succeeds, just without the shared cache.
//
// The hello: to a daemon whose capability line asks for one, the bridge
// says which toolchain the go command is (daemon/hello.ts) before any of
// go's bytes, so the daemon can use toolchain marks for this connection.
//
// Local hits: a daemon whose build cache is a directory this process sees
// too (daemon/disk-mark.ts) has the bridge answer gets for entries on that
// disk itself, at once, and still tell the daemon (bridge/local-hits.ts).
//
// The states it goes through: bridge/state-machine.ts.

import type { CacheHandler } from "../cacheprog/session.ts";
import { writeStderr } from "../util/std-output.ts";
import { formatPluginAddress, type PluginAddress } from "./address.ts";
import { DaemonLink } from "./bridge/daemon-link.ts";
import type { LocalHits } from "./bridge/local-hits.ts";
import type { DiskMark } from "./disk-mark.ts";
import { Bridge } from "./bridge/state-machine.ts";

export type BridgeResult =
  | { kind: "unreachable"; error: Error }
  /** localHits: gets answered from the daemon's disk by the bridge itself. */
  | { kind: "done"; code: number; localHits: number };

export interface BridgeOptions {
  dialTimeoutMs: number;
  /** --answer-timeout: a daemon owing answers and silent this long is taken for stuck (0: never). */
  answerTimeoutMs?: number;
  /**
   * The capability line was already printed (cli.ts does it first thing):
   * drop the daemon's own (its first line, ID 0) instead of forwarding it.
   */
  capabilityPrinted?: boolean;
  /** Sent first as `GOSTASH-AUTH <token>` when set. */
  token?: string | null;
  /** Sent next to a daemon that takes a hello (daemon/hello.ts). */
  hello?: string | null;
  /** Opens the local cache for a takeover; loaded only when needed. */
  openLocal(): Promise<{ handler: CacheHandler; where: string }>;
  /** Reads the daemon's disk for local hits, if this process sees it (bridge/local-hits.ts); absent: never. */
  localHits?: (disk: DiskMark) => LocalHits | null;
}

export async function runBridge(addr: PluginAddress, o: BridgeOptions): Promise<BridgeResult> {
  const setup = {
    where: formatPluginAddress(addr),
    capabilityPrinted: o.capabilityPrinted === true,
    token: o.token ?? null,
    // The capability line is part of reaching the daemon.
    hello: o.hello ? { line: o.hello, waitMs: o.dialTimeoutMs } : null,
    answerTimeoutMs: o.answerTimeoutMs ?? 0,
    openLocal: o.openLocal,
    localHits: o.localHits ?? null,
  };
  const bridge = new Bridge(setup, {
    dial: (events) => DaemonLink.dial(addr, o.dialTimeoutMs, events),
    input: () => Bun.stdin.stream(),
    stderr: writeStderr,
  });
  try {
    await bridge.start();
  } catch (err) {
    return { kind: "unreachable", error: err as Error };
  }
  void bridge.pumpStdin();
  const code = await bridge.exit;
  return { kind: "done", code, localHits: bridge.localHits };
}
