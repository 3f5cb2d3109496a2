// The bridge's states (`gostash connect`, see src/daemon/bridge.ts for
// what it does and why), as BridgeState spells them out:
//
//   dialing -> replaying (auth line; the hello, if the daemon's capability
//              line asks for one; then the unanswered requests again;
//              stdin waits) -> bridging (bytes flow both ways)
//   bridging -> disconnected: the daemon closed a connection with nothing
//              owed (--idle-timeout); dialled again on go's next request
//   bridging -> dialing: a hang-up with requests unanswered
//   any of those -> local: the daemon is gone, keeps hanging up without
//              answering (MAX_REDIALS), refused us, or an unanswered put
//              was too large to keep; the local cache serves the rest
//   any -> finished: nothing left to bridge (the exit code is given once
//              stdout has drained).
//
// Local hits (local-hits.ts) are not a state: while the current link's
// daemon offers a disk this process sees, each get `go` sends is answered
// here when that disk holds it, then sent on (runs of such gets are held
// back until something the daemon must answer goes, or EOF); it counts as
// answered (never replayed, never served again by a takeover), and the
// daemon's own answer to it is dropped (relay.ts).
//
// The sockets, stdin and stdout come in through BridgeIO, so the machine
// can be driven by tests.

import { AUTH_PREFIX } from "../../auth/token.ts";
import { RequestStreamTracker } from "../../cacheprog/framing.ts";
import type { DaemonCapability } from "../hello.ts";
import type { Link, LinkEvents } from "./daemon-link.ts";
import { GoOutput } from "./go-output.ts";
import { LocalAnswers } from "./local-hits.ts";
import { ResponseRelay, type Refusal } from "./relay.ts";
import { StallWatch } from "./stall-watch.ts";
import type { BridgeIO, BridgeSetup } from "./setup.ts";
import { Takeover } from "./takeover.ts";

export type { BridgeIO, BridgeSetup };

/** Dials in a row that got no answer at all before the bridge gives up on the daemon. */
const MAX_REDIALS = 3;

type Dialing = { kind: "dialing" };

type BridgeState =
  /** Dialling the daemon (again); stdin waits. */
  | Dialing
  /** Connected; the auth line and the unanswered requests go out first; stdin waits. */
  | { kind: "replaying"; link: Link }
  /** Connected: bytes flow both ways. */
  | { kind: "bridging"; link: Link }
  /** The daemon closed a connection with nothing owed: dialled again on the next request. */
  | { kind: "disconnected"; why: string }
  /** The daemon went away or refused us: the local cache serves the rest. */
  | { kind: "local"; takeover: Takeover }
  /** Nothing left to bridge: the exit code is given (once stdout has drained). */
  | { kind: "finished" };

export class Bridge {
  private state: BridgeState = { kind: "dialing" };
  /** Woken on every state change (stdin waits out dialing and replaying) and on a capability line. */
  private waiters: (() => void)[] = [];
  private readonly tracker = new RequestStreamTracker();
  private readonly out: GoOutput;
  private readonly relay: ResponseRelay;
  private readonly stall: StallWatch;
  private stdinDone = false;
  /** Dials since the daemon last answered anything. */
  private redials = 0;
  /** Whether the current link's daemon takes a hello; null until its capability line came. */
  private linkTakesHello: boolean | null = null;
  private readonly answers: LocalAnswers;
  /** The exit code, once the conversation is over. */
  readonly exit: Promise<number>;
  private exitWith!: (code: number) => void;

  constructor(
    private readonly o: BridgeSetup,
    private readonly io: BridgeIO,
  ) {
    this.exit = new Promise<number>((r) => (this.exitWith = r));
    this.out = new GoOutput(
      {
        blocked: () => this.link()?.pause(),
        unblocked: () => this.link()?.resume(),
        broken: () => this.goGone(),
      },
      io.writeOut,
      io.releaseOut,
    );
    this.stall = new StallWatch(
      o.answerTimeoutMs ?? 0,
      () => this.tracker.unanswered > 0,
      (quiet) => this.lose(`stopped answering (nothing for ${(quiet / 1000).toFixed(1)}s with ${this.tracker.unanswered} request(s) unanswered; --answer-timeout)`),
    );
    this.relay = new ResponseRelay(o.capabilityPrinted, this.tracker, this.out, {
      refused: (r) => this.refused(r),
      answered: () => (this.redials = 0),
      capability: (c) => this.capability(c),
    });
    this.answers = new LocalAnswers(this.tracker, this.relay, (line) => this.out.write(line), o.localHits ?? null);
  }

  /** Gets answered by the bridge itself from the daemon's disk (local-hits.ts). */
  get localHits(): number {
    return this.answers.count;
  }

  /** The first dial; throws if the daemon cannot be reached. */
  async start(): Promise<void> {
    const dialing: Dialing = { kind: "dialing" };
    this.become(dialing);
    const link = await this.connect(dialing);
    if (link && this.is("replaying", link)) this.become({ kind: "bridging", link });
  }

  /** Copies `go`'s requests to the daemon (or the takeover) until EOF. */
  async pumpStdin(): Promise<void> {
    const reader = this.io.input().getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        // No await while the daemon takes everything at once: this is the hot path.
        const wait = this.forward(value);
        if (wait) await wait;
      }
    } catch (err) {
      this.lose(`could not be reached (${(err as Error).message})`);
    }
    this.stdinDone = true;
    await this.settled();
    this.inputEnded();
  }

  /** One chunk from `go`: to the daemon or the takeover; a promise if it has to wait. */
  private forward(chunk: Uint8Array): Promise<unknown> | undefined {
    const s = this.state;
    if (s.kind === "local") {
      s.takeover.push(chunk);
      return undefined;
    }
    if (s.kind === "finished") return undefined; // nothing to bridge
    if (s.kind !== "bridging") return this.forwardLater(chunk);
    // Only gets answered here: the daemon gets them with the next chunk it must answer (local-hits.ts).
    if (this.answers.observe(chunk) && this.answers.hold(chunk)) return undefined;
    this.stall.sent();
    // A hang-up cuts this short: the redial replays what the tracker saw.
    const sent = this.send(s.link, this.answers.release(chunk));
    if (sent === true) this.stall.alive();
    if (typeof sent === "boolean") return undefined;
    return sent.then((took) => took && this.stall.alive());
  }

  /** Connected (dialled again after an idle close), or taken over, before chunk is forwarded. */
  private async forwardLater(chunk: Uint8Array): Promise<void> {
    await this.settled();
    while (this.state.kind === "disconnected") {
      await this.redial(this.state.why);
      await this.settled();
    }
    await this.forward(chunk); // bridging, local or finished now
  }

  /** `go` closed our stdin. */
  private inputEnded(): void {
    const s = this.state;
    if (s.kind === "local") s.takeover.end();
    else if (s.kind === "bridging" && !s.link.closed) this.shutdownAfterHeld(s.link);
    else if (s.kind !== "finished" && this.tracker.unanswered === 0) this.finishWhenDrained(0);
  }

  /** Our EOF to the daemon, after the gets answered here that it has not seen yet. */
  private shutdownAfterHeld(link: Link): void {
    const sent = this.send(link, this.answers.release());
    if (sent === true) link.shutdown();
    else if (sent) void sent.then((took) => took && link.shutdown());
  }

  /** Dials the daemon and authenticates; the link is current from then on (null if given up meanwhile). */
  private async connect(dialing: Dialing): Promise<Link | null> {
    const link = await this.io.dial(this.linkEvents);
    if (this.state !== dialing) {
      link.terminate();
      return null;
    }
    this.become({ kind: "replaying", link });
    // The daemon's capability line is dropped unless `go` has not seen one yet.
    this.relay.connected();
    // Gets held back for the daemon that went away are answered already: the new one must not answer them again.
    this.answers.drop();
    this.linkTakesHello = null;
    this.answers.offer(null); // until this daemon's capability line offers its disk
    // With a hello to send, the auth line goes out even without a token (empty): a daemon that needs one
    // refuses at once then, instead of waiting for it while we wait for its capability line.
    if (this.o.token || this.o.hello) await this.send(link, Buffer.from(`${AUTH_PREFIX}${this.o.token ?? ""}\n`));
    const hello = this.o.hello;
    if (!hello) return link;
    const takes = await this.takesHello(link, hello.waitMs);
    if (takes === "silent") {
      // A daemon that accepts but says nothing (stopped, or stuck) is not there: nothing of go's waits on it.
      this.become({ kind: "dialing" }); // first, so its close is not taken for a hang-up
      link.terminate();
      throw new Error(`it said nothing within ${hello.waitMs} ms of the connection`);
    }
    if (takes) await this.send(link, Buffer.from(hello.line));
    return link;
  }

  /**
   * Waits for link's capability line (one local round trip; a refusal or a
   * hang-up ends the wait too, and so does waitMs of silence): true if
   * the daemon takes a hello and link is still the one being set up.
   */
  private async takesHello(link: Link, waitMs: number): Promise<boolean | "silent"> {
    let silent = false;
    const timer = setTimeout(() => {
      silent = true;
      this.wake();
    }, waitMs);
    try {
      while (this.linkTakesHello === null && this.is("replaying", link) && !silent) await new Promise<void>((r) => this.waiters.push(r));
    } finally {
      clearTimeout(timer);
    }
    if (!this.is("replaying", link)) return false;
    return this.linkTakesHello === null ? "silent" : this.linkTakesHello;
  }

  /**
   * Dials the daemon again and sends every unanswered request once more.
   * `why` says how the last connection ended; if the daemon cannot be
   * reached again, it is gone, and the message says so with both.
   */
  private async redial(why: string): Promise<void> {
    if (!this.tracker.replayable) return this.lose(`${why}, and an unanswered put was too large to send again`);
    if (this.redials >= MAX_REDIALS) return this.lose(`keeps hanging up without answering (${why}; ${MAX_REDIALS} dials in a row)`);
    this.redials++;
    const dialing: Dialing = { kind: "dialing" };
    this.become(dialing);
    let link: Link | null;
    try {
      link = await this.connect(dialing);
    } catch (err) {
      return this.lose(`went away (${why}; dialling it again failed: ${(err as Error).message})`);
    }
    if (!link) return;
    for (const b of this.tracker.replay().bytes) {
      // A drop meanwhile starts the next redial (or the takeover) itself.
      if (!(await this.send(link, b))) return;
    }
    if (!this.is("replaying", link)) return;
    this.become({ kind: "bridging", link });
    if (this.tracker.unanswered > 0) this.stall.sent();
    if (this.stdinDone && !link.closed) this.shutdownAfterHeld(link);
  }

  /** What the current link's socket reports; a link no longer current is ignored. */
  private readonly linkEvents: LinkEvents = {
    data: (link, chunk) => {
      if (this.link() !== link) return;
      this.relay.relay(link, chunk);
      this.stall.alive();
    },
    end: (link) => {
      if (this.link() !== link) return;
      // The daemon is done talking: normal only after our own EOF, with everything answered.
      if (this.allAnswered()) link.end();
      else this.dropped("closed the connection");
    },
    close: (link, err) => {
      if (this.link() !== link) return;
      if (this.allAnswered()) this.finishWhenDrained(0);
      else this.dropped(err ? `dropped the connection (${err.message})` : "closed the connection");
    },
    error: (link, err) => {
      if (this.link() === link) this.dropped(`failed (${err.message})`);
    },
  };

  /** The current link's capability line came. */
  private capability(c: DaemonCapability): void {
    this.linkTakesHello = c.hello;
    this.answers.offer(c.disk);
    this.wake();
  }

  /** The daemon hung up on the current link before `go` was done. */
  private dropped(why: string): void {
    if (this.tracker.broken) return this.lose(why);
    if (this.stdinDone && this.tracker.midRequest) {
      // go's input ended inside a request: go is gone (killed mid-put), and no daemon can complete that put.
      this.io.stderr(`gostash connect: go's input ended in the middle of a request; stopping\n`);
      return this.finishWhenDrained(1);
    }
    const n = this.tracker.unanswered;
    if (n > 0 || this.tracker.midRequest) {
      const owed = `it ${why} with ${n > 0 ? `${n} request(s) unanswered` : "a request half sent"}`;
      this.leave({ kind: "disconnected", why: owed });
      void this.redial(owed);
    } else if (this.stdinDone) this.finishWhenDrained(0);
    // Nothing lost: an --idle-timeout close, or a daemon that stopped while
    // nobody was waiting on it. Dial again on the next request; only if that
    // fails is anything said.
    else this.leave({ kind: "disconnected", why: `it ${why} while no request was pending` });
  }

  private refused(r: Refusal): void {
    this.lose(r.why, r.kind);
  }

  /** The daemon is no longer used: take over from the local cache (or stop, if there is nothing sensible to take over). */
  private lose(why: string, refused: Refusal["kind"] | null = null): void {
    const s = this.state;
    if (s.kind === "local" || s.kind === "finished") return;
    // Nothing left to answer: a normal end.
    if (this.stdinDone && this.tracker.unanswered === 0 && !refused) return this.finishWhenDrained(0);
    if (this.tracker.broken) {
      // The stream itself is broken: nothing sensible to take over.
      this.io.stderr(`gostash connect: the daemon at ${this.o.where} ${why}; the request stream was not valid\n`);
      this.leave({ kind: "finished" });
      return this.exitWith(1);
    }
    this.answers.offer(null);
    this.answers.drop();
    const takeover = new Takeover(this.tracker, { where: this.o.where, why, refused }, {
      openLocal: this.o.openLocal,
      stderr: this.io.stderr,
      write: (b) => this.out.write(b),
      needCapability: this.relay.capabilityOwed,
      finish: (code) => this.out.whenDrained(() => this.exitWith(code)),
    });
    this.leave({ kind: "local", takeover });
    if (this.stdinDone) takeover.end();
  }

  /** `go` is gone (stdout EPIPE): nothing left to bridge. */
  private goGone(): void {
    if (this.state.kind !== "local") this.leave({ kind: "finished" });
    this.exitWith(1);
  }

  /**
   * Moves on from the current link (if any) and hangs it up. The state
   * changes first: terminate() may report the close at once, and a close
   * on a link that still counted would be taken for another hang-up.
   */
  private leave(next: BridgeState): void {
    const link = this.link();
    this.become(next);
    link?.terminate();
  }

  private finishWhenDrained(code: number): void {
    this.leave({ kind: "finished" });
    this.out.whenDrained(() => this.exitWith(code));
  }

  /** Writes all of bytes to link; false if it closed or stopped being current first. */
  private send(link: Link, bytes: Uint8Array): boolean | Promise<boolean> {
    return link.send(bytes, () => this.link() === link);
  }

  /** The connection whose events count, if any. */
  private link(): Link | null {
    const s = this.state;
    return s.kind === "replaying" || s.kind === "bridging" ? s.link : null;
  }

  private is(kind: "replaying" | "bridging", link: Link): boolean {
    return this.state.kind === kind && this.state.link === link;
  }

  /** Everything `go` sent is answered and it will send nothing more. */
  private allAnswered(): boolean {
    return this.stdinDone && this.tracker.unanswered === 0;
  }

  private become(next: BridgeState): void {
    this.state = next;
    // The watch is for the link that bridges; a redial starts it again once it replayed.
    if (next.kind !== "bridging") this.stall.stop();
    this.wake();
  }

  /** Everyone waiting for a change looks again. */
  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once no dial or replay is in progress. */
  private async settled(): Promise<void> {
    while (this.state.kind === "dialing" || this.state.kind === "replaying") {
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
}
