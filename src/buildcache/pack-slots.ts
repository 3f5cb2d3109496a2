// The state of each entry a pack reader's head lists (pack-reader.ts): a
// slot, spelled out as a state machine so that every get waiting on an
// entry is answered exactly once.
//
//   pending --(its bytes come, not on disk)--> landing --> landed | failed
//   pending --(on disk already, or its segment failed)--> landed | failed
//   landing --(a lead failed to land it: pack-lead.ts)--> pending

import type { StoredOutput } from "../store/disk.ts";
import type { PackEntry } from "../store/packs.ts";

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
