// What the daemon says, passed on to `go`: whole lines, noting which
// requests they answer.
//
// - Answers to gets the bridge answered itself from the daemon's disk
//   (local-hits.ts) are dropped: `go` must see one answer per request. So
//   is any answer to a request not in flight (go ends the build on one).
// - Capability: `go` must see exactly one capability line. cli.ts may have
//   printed ours already; then each connection's own (its first line, ID 0)
//   is dropped, as is the one of every connection after the first. Each
//   one is read for whether the daemon takes a hello (daemon/hello.ts).
// - Refusals: a daemon that refuses a client (a wrong token: `GOSTASH-ERROR
//   unauthorized: ...`; over --max-connections: `GOSTASH-ERROR busy: ...`)
//   says so in one line, before anything else, and hangs up. That line is
//   never forwarded to `go`: the bridge serves the build from the local
//   cache instead (bridge.ts).

import { ERROR_PREFIX } from "../../auth/token.ts";
import { responseID, type RequestStreamTracker } from "../../cacheprog/framing.ts";
import { readCapability, type DaemonCapability } from "../hello.ts";
import type { Link } from "./daemon-link.ts";
import type { GoOutput } from "./go-output.ts";

const NL = 10;
const G = 71;

export interface Refusal {
  kind: "busy" | "unauthorized";
  /** What the daemon did, for the one line on stderr. */
  why: string;
}

export interface RelayHooks {
  /** The daemon refused this client: nothing of its output was forwarded. */
  refused(r: Refusal): void;
  /** A line answered one of the requests in flight. */
  answered(id: number): void;
  /** The connection's capability line came: what the daemon offers (a hello, its disk). */
  capability(c: DaemonCapability): void;
}

export class ResponseRelay {
  private capabilitySeen: boolean;
  private dropCapability: boolean;
  /** Gets the bridge answered itself (local-hits.ts): the daemon's answers to them are dropped. */
  private readonly answeredHere = new Set<number>();

  constructor(
    capabilityPrinted: boolean,
    private readonly tracker: RequestStreamTracker,
    private readonly out: GoOutput,
    private readonly hooks: RelayHooks,
  ) {
    this.capabilitySeen = capabilityPrinted;
    this.dropCapability = capabilityPrinted;
  }

  /** `go` has not seen a capability line yet (whoever answers next must send one). */
  get capabilityOwed(): boolean {
    return !this.capabilitySeen;
  }

  /** A new connection: its capability line is dropped unless `go` has not seen one yet. */
  connected(): void {
    this.dropCapability = this.capabilitySeen;
    // Gets answered here are never sent again: a new connection will not answer them.
    this.answeredHere.clear();
  }

  /** The bridge answered get `id` itself: the daemon's answer to it must not reach `go`. */
  answeredLocally(id: number): void {
    this.answeredHere.add(id);
  }

  /** Bytes the daemon sent on link. */
  relay(link: Link, chunk: Uint8Array): void {
    const data = link.lines.push(chunk);
    if (!data) return;
    const last = data.length - 1;
    let start = 0;
    let fwdFrom = 0;
    while (start <= last) {
      const nl = data.indexOf(NL, start);
      if (start === fwdFrom && data[start] === G && isErrorLine(data, start, nl)) {
        // The daemon refused us (only ever before anything else): never forwarded.
        link.lines.reset();
        return this.hooks.refused(refusal(data, start, nl));
      }
      const id = responseID(data, start, nl);
      if (id === 0) this.hooks.capability(readCapability(Buffer.from(data.subarray(start, nl)).toString("utf8")));
      if (this.dropsLine(id)) {
        if (fwdFrom < start) this.out.write(data.subarray(fwdFrom, start));
        fwdFrom = nl + 1;
      }
      start = nl + 1;
    }
    if (fwdFrom <= last) this.out.write(data.subarray(fwdFrom, last + 1));
    this.out.releaseIfAnswered();
  }

  /** Notes what a line with this ID means; true if it must not reach `go`. */
  private dropsLine(id: number | null): boolean {
    let drop = false;
    if (id === 0 && !this.capabilitySeen) this.capabilitySeen = true;
    else if (id === 0 && this.dropCapability) drop = true; // our own capability line went out already
    else if (id !== null && this.answeredHere.delete(id)) {
      drop = true; // `go` has its answer from the bridge already
      this.hooks.answered(id);
    } else if (id !== null && this.tracker.answered(id)) {
      this.hooks.answered(id);
      if (id === this.tracker.closeID) this.out.markCloseAnswered();
    } else if (id !== null && id !== 0) {
      drop = true; // not a request in flight: `go` stops the build on an answer it did not ask for
    }
    if (id !== 0 || drop) this.dropCapability = false;
    return drop;
  }
}

function isErrorLine(buf: Uint8Array, start: number, end: number): boolean {
  if (end - start < ERROR_PREFIX.length) return false;
  for (let i = 0; i < ERROR_PREFIX.length; i++) if (buf[start + i] !== ERROR_PREFIX.charCodeAt(i)) return false;
  return true;
}

function refusal(buf: Uint8Array, start: number, end: number): Refusal {
  const reason = Buffer.from(buf.subarray(start + ERROR_PREFIX.length, end)).toString("utf8").trim();
  return { kind: reason.startsWith("busy") ? "busy" : "unauthorized", why: `refused this client (${reason || "unauthorized"})` };
}
