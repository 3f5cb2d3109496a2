// Local hits answered by the bridge itself: when the daemon's build cache
// is a directory this process sees too (daemon/disk-mark.ts), a get whose
// entry is on that disk is answered at once from it, exactly as the daemon
// would answer it, without the round trip through a third process (on two
// vCPUs that round trip cost a warm `go build std` a fifth more time than
// direct mode: docs/daemon.md).
//
// The get is still sent to the daemon, which answers it as before: it
// counts the hit, its time saved and the command's pack, refreshes the
// entry's mtime, and the status page and `gostash ci summary` see it. The
// relay drops that second answer (relay.ts); `go` sees one answer per get.
// A miss here (or an entry being written) is left to the daemon, which also
// knows the shared tier.

import { idHex } from "../../cacheprog/decoder.ts";
import type { RequestStreamTracker } from "../../cacheprog/framing.ts";
import { encodeHit, type Hit } from "../../cacheprog/protocol.ts";
import type { DiskMark } from "../disk-mark.ts";
import type { ResponseRelay } from "./relay.ts";

/** What the bridge reads the daemon's disk through (store/disk.ts's get). */
export interface LocalDisk {
  get(actionID: string): Hit | null;
}

export class LocalHits {
  constructor(private readonly disk: LocalDisk) {}

  /** The answer to get `id` (ActionID as sent) if the disk holds its entry; null leaves it to the daemon. */
  answer(id: number, actionID: unknown): Uint8Array | null {
    const hex = idHex(actionID);
    if (!hex) return null;
    let hit: Hit | null;
    try {
      hit = this.disk.get(hex);
    } catch {
      return null;
    }
    return hit ? Buffer.from(encodeHit(id, hit)) : null;
  }
}

const EMPTY = new Uint8Array(0);

/** Bytes of gets answered here held back at most (about 600 gets). */
const MAX_HELD = 64 << 10;

/**
 * One bridge's local hits, across its links: on while the current link's
 * daemon offers a disk this process sees. A get answered here counts as
 * answered (the tracker never replays it, a takeover never serves it
 * again) and the daemon's answer to it is dropped (relay.ts).
 *
 * Nobody waits for the daemon's copy of such a get, so chunks of `go`'s
 * input that hold nothing else are held back and sent with the next chunk
 * that does (a miss, a put, close) or at EOF: the daemon wakes once for a
 * run of hits instead of once per get, which on a machine with few cores
 * is CPU the go command gets back. The held bytes are whole requests, so
 * the stream the daemon reads stays well framed.
 */
export class LocalAnswers {
  /** Gets answered here, over all links. */
  count = 0;
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  /** Answers made while one chunk is followed: written to `go` together, one write for a chunk of gets. */
  private batch: Uint8Array[] = [];

  constructor(
    private readonly tracker: RequestStreamTracker,
    private readonly relay: ResponseRelay,
    private readonly write: (line: Uint8Array) => void,
    /** Reads a daemon's disk if this process sees it; null: local hits are off. */
    private readonly open: ((disk: DiskMark) => LocalHits | null) | null,
  ) {}

  /** What the current link's daemon offers (null: nothing, or not heard from yet, or the daemon is left). */
  offer(disk: DiskMark | null): void {
    const hits = disk && this.open ? this.open(disk) : null;
    this.tracker.onGet = hits ? (id, actionID) => this.answer(hits, id, actionID) : null;
  }

  /**
   * Follows a chunk of `go`'s input (tracker.observe); true if it holds
   * whole requests only, all answered here. A chunk that starts or ends
   * inside a request (a put's body) always goes at once: the daemon owes
   * that put an answer.
   */
  observe(chunk: Uint8Array): boolean {
    const seen = this.tracker.seen;
    const count = this.count;
    const startsInside = this.tracker.midRequest;
    this.tracker.observe(chunk);
    if (this.batch.length) {
      this.write(this.batch.length === 1 ? this.batch[0]! : Buffer.concat(this.batch));
      this.batch = [];
    }
    const requests = this.tracker.seen - seen;
    return !startsInside && requests > 0 && this.count - count === requests && !this.tracker.midRequest;
  }

  /** Holds back a chunk of gets answered here; false (not held) when enough is held already. */
  hold(chunk: Uint8Array): boolean {
    if (this.heldBytes + chunk.length > MAX_HELD) return false;
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    return true;
  }

  /** What is held, then chunk: the bytes to send now. */
  release(chunk: Uint8Array = EMPTY): Uint8Array {
    if (!this.held.length) return chunk;
    const bytes = Buffer.concat([...this.held, chunk]);
    this.drop();
    return bytes;
  }

  /** Forgets what is held (the daemon is left). */
  drop(): void {
    this.held = [];
    this.heldBytes = 0;
  }

  private answer(hits: LocalHits, id: number, actionID: unknown): void {
    const line = hits.answer(id, actionID);
    if (!line) return;
    this.tracker.answered(id);
    this.relay.answeredLocally(id);
    this.count++;
    this.batch.push(line);
  }
}
