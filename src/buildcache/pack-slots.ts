// The state of each entry a pack reader's head lists (pack-reader.ts): a
// slot, spelled out as a state machine so that every get waiting on an
// entry is answered exactly once; and what a pack's landing reports do to
// those slots (slotSink).
//
//   pending --(its bytes come, not on disk)--> landing --> landed | failed
//   pending --(on disk already, or its segment failed)--> landed | failed
//   landing --(a lead failed to land it: pack-lead.ts)--> pending

import { asRemoteError } from "../s3/errors.ts";
import type { CostBook } from "../store/costs.ts";
import type { DiskStore, StoredOutput } from "../store/disk.ts";
import type { SegmentSink } from "../store/pack-stream.ts";
import type { PackEntry } from "../store/packs.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";

export type Waiter = (out: StoredOutput | null) => void;

export type SlotState =
  /** Its segment has not reached it yet. */
  | { kind: "pending"; waiters: Waiter[] }
  /** Not on the local disk when its bytes came: being decoded, verified and written (the file may show up before this says so). */
  | { kind: "landing"; waiters: Waiter[] }
  /** here: landed by this reader (not found on the local disk already). */
  | { kind: "landed"; out: StoredOutput; here: boolean }
  | { kind: "failed" };

export interface Slot<Task> {
  entry: PackEntry;
  task: Task;
  state: SlotState;
  asked: boolean;
}

/** Ends a slot still waiting for its bytes, and answers its waiters; a slot already ended stays as it is. */
export function settle(slot: Slot<unknown>, next: Extract<SlotState, { kind: "landed" | "failed" }>): void {
  if (slot.state.kind !== "pending" && slot.state.kind !== "landing") return;
  const waiters = slot.state.waiters;
  slot.state = next;
  const out = next.kind === "landed" ? next.out : null;
  for (const w of waiters) w(out);
}

/** A slot whose bytes a lead failed to land waits again, for the pack itself. */
export function unland(slot: Slot<unknown> | null): void {
  if (slot?.state.kind === "landing") slot.state = { kind: "pending", waiters: slot.state.waiters };
}

/** What an entry's action cost to compute, into this machine's book (as from a single object). */
export function recordCost(entry: PackEntry, costs: CostBook | undefined): void {
  if (entry.meta.costMs !== undefined) costs?.record(entry.actionID, entry.meta.costMs);
}

export interface SlotSinkDeps {
  disk: DiskStore;
  metrics: Metrics;
  logger: Logger;
  costs?: CostBook;
  /** The entry's slot in the reader, if it still counts (not superseded by a later pack). */
  slotOf(entry: PackEntry): Slot<unknown> | null;
  /** The pack holds a bad entry. */
  broken(): void;
}

/** What one pack's landing reports (store/pack-stream.ts) do to the reader's slots. */
export function slotSink(d: SlotSinkDeps): SegmentSink {
  return {
    isLocal: (entry) => {
      const slot = d.slotOf(entry);
      // Superseded by a later pack, or already answered: not landed again.
      if (!slot || slot.state.kind !== "pending") return true;
      const out = d.disk.get(entry.actionID);
      if (!out) {
        slot.state = { kind: "landing", waiters: slot.state.waiters };
        return false;
      }
      d.metrics.inc("pack_entries_local");
      settle(slot, { kind: "landed", out, here: false });
      return true;
    },
    landed: (entry, out) => {
      d.metrics.inc("pack_entries_landed");
      recordCost(entry, d.costs);
      const slot = d.slotOf(entry);
      if (slot) settle(slot, { kind: "landed", out, here: true });
    },
    failed: (entry, err) => {
      const e = asRemoteError(err, `s3: pack ${entry.actionID}`);
      if (e.kind === "badobject") {
        d.metrics.inc("pack_integrity_failures");
        d.metrics.inc("integrity_failures");
        d.logger.warn(`${e.message}; not served (it comes as a single object instead)`);
      } else d.metrics.inc("pack_errors");
      const slot = d.slotOf(entry);
      if (slot) settle(slot, { kind: "failed" });
      if (e.kind === "badobject") d.broken();
    },
  };
}
