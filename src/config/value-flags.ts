// Names (and aliases) of every flag that takes a value, for cli-args.ts.
import { takesOptionalValue, type FlagSpecs } from "./flags.ts";
import * as groups from "./options.ts";

function collect(): Set<string> {
  const names = new Set<string>();
  for (const group of Object.values(groups) as FlagSpecs[]) {
    for (const [name, spec] of Object.entries(group)) {
      // `--debug serve` is the debug flag and the serve command, not debug=serve.
      if (takesOptionalValue(spec)) continue;
      names.add(name);
      for (const a of spec.alias ?? []) names.add(a);
    }
  }
  return names;
}

export const VALUE_FLAGS: ReadonlySet<string> = collect();

/** One-letter aliases to their long names (-u -> upload-concurrency). */
function collectAliases(): Map<string, string> {
  const aliases = new Map<string, string>();
  for (const group of Object.values(groups) as FlagSpecs[]) {
    for (const [name, spec] of Object.entries(group)) for (const a of spec.alias ?? []) aliases.set(a, name);
  }
  return aliases;
}

export const FLAG_ALIASES: ReadonlyMap<string, string> = collectAliases();
