// What a go command's pack upload holds (layout: store/packs.ts). Pure: the
// head the bucket has, what the command used, and which packs turned out
// broken in, the plan out.
//
//   nothing   every action the command used is in a pack already (the
//             usual warm run): no upload at all, not even the head.
//   delta     the actions no pack holds, as one new pack appended to the
//             head's list: never re-uploads what a pack already has.
//   compact   the head would name more than MAX_CHAIN_PACKS packs or
//             MAX_CHAIN_ENTRIES entries: one pack of everything this
//             command used replaces them all, and packs only other
//             commands used drop out of the head (those commands write a
//             delta with what they need on their next run).
//   skip      compaction is due but this command used less than half of
//             what the head lists (a `go list` of one package after
//             `go test ./...`): replacing the head with its little would
//             cost everyone else a re-upload, so nothing is written.
//
// A pack the reader found missing (404) or with a bad entry counts as not
// there: its actions used by this command go into the delta, and the new
// head leaves it out.
//
// Misses (the head's known misses, store/packs.ts) only travel with a pack
// upload: a command with nothing to pack writes no head for its misses
// alone, so a warm run stays request-free.

import { MAX_HEAD_MISSES, type PackHead, type PackRef } from "../store/packs.ts";

/** A head names at most this many packs before it is compacted. */
export const MAX_CHAIN_PACKS = 8;
/** ...and at most this many entries. */
export const MAX_CHAIN_ENTRIES = 100_000;
/** A command compacts only if it used at least this share of the head's entries. */
const COMPACT_MIN_SHARE = 0.5;

export type PackPlan =
  | { kind: "nothing" }
  | { kind: "delta"; ids: string[]; keep: PackRef[] }
  | { kind: "compact"; ids: string[]; dropped: number }
  | { kind: "skip"; missing: number };

/** `used`: the command's actions in the order it first used them. */
export function planPack(head: PackHead | null, used: readonly string[], broken: ReadonlySet<string>): PackPlan {
  const healthy = (head?.packs ?? []).filter((p) => !broken.has(p.name));
  const packed = new Set<string>();
  for (const p of healthy) for (const e of p.entries) packed.add(e.actionID);
  const missing = used.filter((id) => !packed.has(id));
  if (missing.length === 0) {
    return { kind: "nothing" };
  }
  if (healthy.length + 1 <= MAX_CHAIN_PACKS && packed.size + missing.length <= MAX_CHAIN_ENTRIES) {
    return { kind: "delta", ids: missing, keep: healthy };
  }
  if (used.length >= COMPACT_MIN_SHARE * packed.size) return { kind: "compact", ids: [...used], dropped: head?.packs.length ?? 0 };
  return { kind: "skip", missing: missing.length };
}

/**
 * The misses the head written with a plan carries: this command's, then,
 * for a delta, the old head's; none that a pack of the new head holds;
 * at most MAX_HEAD_MISSES.
 */
export function nextMisses(kind: "delta" | "compact", commandMisses: readonly string[], old: PackHead | null, packs: readonly PackRef[]): string[] {
  const packed = new Set<string>();
  for (const p of packs) for (const e of p.entries) packed.add(e.actionID);
  const out = new Set<string>();
  for (const a of kind === "delta" ? [...commandMisses, ...(old?.misses ?? [])] : commandMisses) {
    if (out.size >= MAX_HEAD_MISSES) break;
    if (!packed.has(a)) out.add(a);
  }
  return [...out];
}
