// Flag specs that citty parses and that each also read an environment
// variable (flag beats env beats default). The env name is part of the
// description, so `--help` documents both.

import type { ArgsDef } from "citty";

export interface FlagSpec {
  type: "string" | "boolean";
  description: string;
  /** First name is documented; the rest are accepted aliases. */
  env?: string[];
  alias?: string[];
  default?: string | boolean;
  valueHint?: string;
}

export type FlagSpecs = Record<string, FlagSpec>;
export type FlagValues = Record<string, string | boolean | undefined>;

export function toCittyArgs(specs: FlagSpecs): ArgsDef {
  const args: ArgsDef = {};
  for (const [name, spec] of Object.entries(specs)) {
    const extra: string[] = [];
    if (spec.env?.length) extra.push(`env ${spec.env[0]}`);
    if (spec.default !== undefined && spec.default !== false) extra.push(`default ${spec.default}`);
    const description = extra.length ? `${spec.description} [${extra.join("; ")}]` : spec.description;
    // No citty default: an absent flag must fall back to the environment.
    args[name] = {
      type: spec.type,
      description,
      ...(spec.alias ? { alias: spec.alias } : {}),
      ...(spec.valueHint ? { valueHint: spec.valueHint } : {}),
    } as ArgsDef[string];
  }
  return args;
}

const TRUE = new Set(["1", "true", "yes", "on", "t", "y"]);
const FALSE = new Set(["0", "false", "no", "off", "f", "n", ""]);

export function parseBool(value: string, what: string): boolean {
  const v = value.trim().toLowerCase();
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  throw new Error(`config: ${what} must be true or false, got ${JSON.stringify(value)}`);
}

/** Flag value if given, else the first set environment variable, else the default. */
export function resolveFlags(
  specs: FlagSpecs,
  parsed: Record<string, unknown>,
  env: Record<string, string | undefined> = process.env,
): FlagValues {
  const out: FlagValues = {};
  for (const [name, spec] of Object.entries(specs)) {
    const given = parsed[name];
    if (given !== undefined && given !== "") {
      out[name] = spec.type === "boolean" ? given === true || given === "true" : String(given);
      continue;
    }
    const envName = spec.env?.find((e) => env[e] !== undefined);
    if (envName) {
      const raw = env[envName]!;
      out[name] = spec.type === "boolean" ? parseBool(raw, envName) : raw;
      continue;
    }
    out[name] = spec.default;
  }
  return out;
}

/** citty ignores unknown flags; a mistyped flag must be an error instead. */
export function rejectUnknownFlags(rawArgs: string[], specs: FlagSpecs, positional = 0): void {
  const known = new Set<string>();
  for (const [name, spec] of Object.entries(specs)) {
    known.add(name);
    if (spec.type === "boolean") known.add(`no-${name}`);
    for (const a of spec.alias ?? []) known.add(a);
  }
  let positionals = 0;
  for (const a of rawArgs) {
    if (a === "--") break;
    if (!a.startsWith("-") || a === "-") {
      if (++positionals > positional) throw new Error(`config: unexpected argument ${JSON.stringify(a)}`);
      continue;
    }
    const name = a.replace(/^--?/, "").split("=")[0]!;
    if (!known.has(name)) throw new Error(`config: unknown flag ${a.split("=")[0]}`);
  }
}

/**
 * Reads arguments already normalised by cli-args.ts (`--name=value`,
 * `--name`, `--no-name`; one or two dashes, as Go's flag package takes) into
 * the shape citty would give. Plugin mode uses this instead of citty's
 * parser, which costs milliseconds of start-up that `go` waits for.
 * Unknown names are left out here and reported by rejectUnknownFlags.
 */
export function parseFlagArgs(rawArgs: string[], specs: FlagSpecs): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (const a of rawArgs) {
    if (a === "--") break;
    if (!a.startsWith("-") || a === "-") continue;
    const body = a.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const value = eq < 0 ? null : body.slice(eq + 1);
    const spec = specs[name];
    if (spec) {
      out[name] = spec.type === "boolean" ? value === null || parseBool(value, `--${name}`) : (value ?? "");
      continue;
    }
    if (name.startsWith("no-") && specs[name.slice(3)]?.type === "boolean" && value === null) out[name.slice(3)] = false;
  }
  return out;
}
