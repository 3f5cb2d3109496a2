// The settings a daemon runs with, for the status page: every flag that has
// a value (given, from its environment variable, or its default), with what
// set it. Secrets never leave the process: token values are "***", and a
// password in a URL (an upstream or endpoint "https://user:pass@host") is
// "***" too.

import type { Flags, FlagSpecs } from "../../config/flags.ts";
import { formatBytes } from "../../util/bytes.ts";
import type { FlagInEffect } from "./sources.ts";
import { hideUrlPasswords } from "../../util/redact.ts";

export { hideUrlPasswords };

/** Flags whose values are secrets: shown as "***" when set. */
const SECRET = /token|secret|password|passwd|credential/i;

export function flagsInEffect(specs: FlagSpecs, flags: Flags): FlagInEffect[] {
  const out: FlagInEffect[] = [];
  for (const [name, spec] of Object.entries(specs)) {
    let value: string | undefined;
    switch (spec.type) {
      case "boolean":
        value = String(flags.bool(name));
        break;
      case "string":
        value = flags.string(name);
        break;
      default: {
        const n = flags.number(name, NaN);
        if (Number.isNaN(n)) break;
        value = spec.type === "size" ? formatBytes(n) : spec.type === "duration" ? formatDuration(n) : String(n);
      }
    }
    if (value === undefined) continue;
    out.push({ name: `--${name}`, value: SECRET.test(name) ? "***" : hideUrlPasswords(value), source: flags.source(name) });
  }
  return out;
}


/** Milliseconds as the flag would be written: "10m", "1h30m", "250ms". */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0";
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0) parts.push(`${Math.round(rest * 1000) / 1000}ms`);
  return parts.join("");
}
