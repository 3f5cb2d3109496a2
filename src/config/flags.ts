// Flags, each with an environment twin and a default that is data: the
// same value is shown by `--help` and used when neither the flag nor its
// variable is set (flag beats env beats default).
//
// Values are checked once, when a command starts (Flags.resolve), by the
// kind of the flag, and an error names what the user actually set: the flag
// as written (`--expiry`) or the environment variable (`GOCACHE_EXPIRY`).
// Commands turn the checked values into typed settings (config.ts); no
// subsystem ever sees a raw flag value.

import type { ArgsDef } from "citty";
import { ConfigError } from "./error.ts";
import { parseDuration, parseSize } from "./units.ts";

export { ConfigError };

/**
 * How a flag's text is read: sizes like 512MiB, durations like 30s, whole
 * numbers >= 0, and bit masks (a whole number, or true for every bit and
 * false for none; the value may be left out, which means true, or given as
 * the next argument when it is a number: go-cache-plugin's `--debug 7`).
 */
export type FlagKind = "string" | "boolean" | "size" | "duration" | "count" | "mask";

/** What `true` means for a mask: every bit. */
export const MASK_ALL = 0xffff;

export interface FlagSpec {
  type: FlagKind;
  description: string;
  /** First name is documented; the rest are accepted too, in this order. */
  env?: string[];
  alias?: string[];
  /** Used when neither flag nor variable is set, and shown by --help. */
  default?: string | boolean;
  /** For defaults that are worked out at run time: what --help says instead. */
  defaultText?: string;
  valueHint?: string;
}

export type FlagSpecs = Record<string, FlagSpec>;


type Value = string | boolean | number;

interface Resolved {
  value: Value | undefined;
  /** What set it: "--name", an environment variable, or "default". */
  source: string;
}

const TRUE = new Set(["1", "true", "yes", "on", "t", "y"]);
const FALSE = new Set(["0", "false", "no", "off", "f", "n", ""]);

export function parseBool(value: string, what: string): boolean {
  const v = value.trim().toLowerCase();
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  throw new ConfigError(`${what} must be true or false, got ${JSON.stringify(value)}`);
}

export function parseCount(value: string, what: string): number {
  const t = value.trim();
  if (!/^\d+$/.test(t)) throw new ConfigError(`${what} must be a whole number (0 or more), got ${JSON.stringify(value)}`);
  return Number(t);
}

/** A bit mask: a whole number, or true/false (every bit, none). */
export function parseMask(value: string | boolean, what: string): number {
  if (typeof value === "boolean") return value ? MASK_ALL : 0;
  const t = value.trim();
  if (/^\d+$/.test(t)) return Number(t);
  const v = t.toLowerCase();
  if (TRUE.has(v)) return MASK_ALL;
  if (FALSE.has(v)) return 0;
  throw new ConfigError(`${what} must be a bit mask (a whole number such as 1, 2, 4 or 7) or true or false, got ${JSON.stringify(value)}`);
}

/** Flags that take no value, or an optional one (mask): never joined with the next argument blindly. */
export function takesOptionalValue(spec: FlagSpec): boolean {
  return spec.type === "boolean" || spec.type === "mask";
}

/** The argument after a bare mask flag is its value when it is a number (`--debug 7`). */
const MASK_NEXT = /^\d+$/;

function parseValue(kind: FlagKind, raw: string | boolean, what: string): Value {
  if (kind === "boolean") return typeof raw === "boolean" ? raw : parseBool(raw, what);
  if (kind === "mask") return parseMask(raw, what);
  const text = String(raw);
  switch (kind) {
    case "size":
      return parseSize(text, what);
    case "duration":
      return parseDuration(text, what);
    case "count":
      return parseCount(text, what);
    default:
      return text;
  }
}

/** The checked values of one command's flags. */
export class Flags {
  private constructor(private readonly values: Map<string, Resolved>) {}

  /**
   * Flag value if given, else the first set environment variable, else the
   * default; each checked by its kind (throws ConfigError naming the source).
   */
  static resolve(specs: FlagSpecs, parsed: Record<string, unknown>, env: Record<string, string | undefined> = process.env): Flags {
    const values = new Map<string, Resolved>();
    for (const [name, spec] of Object.entries(specs)) values.set(name, resolveOne(name, spec, parsed[name], env));
    return new Flags(values);
  }

  /** Set by its flag or environment variable (not the default). */
  given(name: string): boolean {
    const s = this.values.get(name)?.source;
    return s !== undefined && s !== "default";
  }

  /** What set the value, as the user wrote it: "--name" or "ENV_NAME" ("default" otherwise). */
  source(name: string): string {
    return this.values.get(name)?.source ?? `--${name}`;
  }

  /** A string value; undefined when unset or empty. */
  string(name: string): string | undefined {
    const v = this.values.get(name)?.value;
    return typeof v === "string" && v !== "" ? v : undefined;
  }

  bool(name: string): boolean {
    return this.values.get(name)?.value === true;
  }

  /** A mask flag's bits (0 when unset). */
  mask(name: string): number {
    const v = this.values.get(name)?.value;
    return typeof v === "number" ? v : 0;
  }

  /** A size, duration (ms) or count; `fallback` when the flag has no value and no default. */
  number(name: string, fallback = 0): number {
    const v = this.values.get(name)?.value;
    return typeof v === "number" ? v : fallback;
  }
}

function resolveOne(name: string, spec: FlagSpec, given: unknown, env: Record<string, string | undefined>): Resolved {
  if (given !== undefined && given !== "") {
    const raw = spec.type === "boolean" ? given === true || given === "true" : spec.type === "mask" && typeof given === "boolean" ? given : String(given);
    return { value: checkTimer(name, parseValue(spec.type, raw, `--${name}`), `--${name}`), source: `--${name}` };
  }
  const envName = spec.env?.find((e) => env[e] !== undefined);
  if (envName) {
    const raw = env[envName]!;
    // An empty variable means "not set" for values (GOCACHE_S3_BUCKET=), false for switches.
    if (raw === "" && spec.type !== "boolean") return { value: undefined, source: envName };
    return { value: checkTimer(name, parseValue(spec.type, raw, envName), envName), source: envName };
  }
  if (spec.default === undefined) return { value: undefined, source: "default" };
  return { value: parseValue(spec.type, spec.default, `the default of --${name}`), source: "default" };
}

/** The longest a timer waits: setTimeout fires at once (after 1 ms) beyond 2^31 - 1 ms, about 24.8 days. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A `--*-timeout` runs as a timer: one longer than a timer can wait would fire at once, so it is refused. */
function checkTimer(name: string, value: Value, what: string): Value {
  if (!name.endsWith("-timeout") || typeof value !== "number" || value <= MAX_TIMER_MS) return value;
  throw new ConfigError(`${what}: ${Math.round(value / 86_400_000)} days is longer than a timeout can be (at most 24 days)`);
}

/** The text --help shows after a flag's description: its variable and default. */
export function helpSuffix(spec: FlagSpec): string {
  const extra: string[] = [];
  if (spec.env?.length) extra.push(`env ${spec.env[0]}`);
  const def = spec.defaultText ?? (spec.default !== undefined && spec.default !== false ? String(spec.default) : undefined);
  if (def !== undefined) extra.push(`default ${def}`);
  return extra.length ? ` [${extra.join("; ")}]` : "";
}

/** What a flag's value looks like, for messages and --help: `<dir>`. */
export function valueHint(name: string, spec: FlagSpec): string {
  return `<${spec.valueHint ?? name}>`;
}

/** The spec behind each argument toCittyArgs made: --help groups flags by it (cli/help.ts). */
const specOfArg = new WeakMap<object, FlagSpec>();

/** The FlagSpec a citty argument was made from, if toCittyArgs made it. */
export function flagSpecOf(arg: object): FlagSpec | undefined {
  return specOfArg.get(arg);
}

/** citty's view of the flags, for --help and completion (values are read by Flags, not by citty). */
export function toCittyArgs(specs: FlagSpecs): ArgsDef {
  const args: ArgsDef = {};
  for (const [name, spec] of Object.entries(specs)) {
    // No citty default: an absent flag must fall back to the environment.
    const arg = {
      type: spec.type === "boolean" ? "boolean" : "string",
      description: `${spec.description}${helpSuffix(spec)}`,
      ...(spec.alias ? { alias: spec.alias } : {}),
      ...(spec.valueHint ? { valueHint: spec.valueHint } : {}),
    } as ArgsDef[string];
    specOfArg.set(arg, spec);
    args[name] = arg;
  }
  return args;
}

/** citty ignores unknown flags; a mistyped flag must be an error instead. */
export function rejectUnknownFlags(rawArgs: string[], specs: FlagSpecs, positional = 0): void {
  const known = new Set<string>();
  for (const [name, spec] of Object.entries(specs)) {
    known.add(name);
    if (takesOptionalValue(spec)) known.add(`no-${name}`);
    for (const a of spec.alias ?? []) known.add(a);
  }
  let positionals = 0;
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a === "--") break;
    if (maskValueFollows(rawArgs, i, specs)) {
      i++;
      continue;
    }
    if (!a.startsWith("-") || a === "-") {
      if (++positionals > positional) throw new ConfigError(`unexpected argument ${JSON.stringify(a)}`);
      continue;
    }
    const name = a.replace(/^--?/, "").split("=")[0]!;
    if (!known.has(name)) throw new ConfigError(`unknown flag ${a.split("=")[0]}`);
  }
}

/**
 * Reads arguments already normalised by cli-args.ts (`--name=value`,
 * `--name`, `--no-name`; one or two dashes, as Go's flag package takes).
 * Plugin and connect mode use this instead of citty's parser, which costs
 * milliseconds of start-up that `go` waits for. Unknown names are left out
 * here and reported by rejectUnknownFlags.
 */
export function parseFlagArgs(rawArgs: string[], specs: FlagSpecs): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a === "--") break;
    if (!a.startsWith("-") || a === "-") continue;
    const { name, value } = flagParts(a, specs);
    const spec = specs[name];
    if (spec?.type === "mask" && value === null) {
      // `--debug 7` as go-cache-plugin takes it; a bare `--debug` is every bit.
      out[name] = maskValueFollows(rawArgs, i, specs) ? rawArgs[++i]! : true;
      continue;
    }
    if (spec) {
      // `--http` alone (cli-args.ts never lets it take a flag after it as its value).
      if (spec.type !== "boolean" && value === null) throw new ConfigError(`--${name} needs a value: --${name}=${valueHint(name, spec)}`);
      out[name] = spec.type === "boolean" ? value === null || parseBool(value, `--${name}`) : value!;
      continue;
    }
    if (name.startsWith("no-") && value === null && specs[name.slice(3)] && takesOptionalValue(specs[name.slice(3)]!)) out[name.slice(3)] = false;
  }
  return out;
}

/** A flag argument's long name (aliases resolved) and its `=value`, if any. */
function flagParts(arg: string, specs: FlagSpecs): { name: string; value: string | null } {
  const body = arg.replace(/^--?/, "");
  const eq = body.indexOf("=");
  let name = eq < 0 ? body : body.slice(0, eq);
  for (const [long, spec] of Object.entries(specs)) if (spec.alias?.includes(name)) name = long;
  return { name, value: eq < 0 ? null : body.slice(eq + 1) };
}

/** Is rawArgs[i] a bare mask flag followed by its number (`--debug 7`)? */
function maskValueFollows(rawArgs: string[], i: number, specs: FlagSpecs): boolean {
  const a = rawArgs[i]!;
  if (!a.startsWith("-") || a === "-" || a === "--") return false;
  const { name, value } = flagParts(a, specs);
  return specs[name]?.type === "mask" && value === null && MASK_NEXT.test(rawArgs[i + 1] ?? "");
}

/** The arguments that are not flags nor flag values (`--debug 7` takes the 7), up to `--`. */
export function positionalArgs(rawArgs: string[], specs: FlagSpecs): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a === "--") break;
    if (maskValueFollows(rawArgs, i, specs)) i++;
    else if (!a.startsWith("-") || a === "-") out.push(a);
  }
  return out;
}

/** Rejects unknown flags, then resolves the rest: the one way a command reads its arguments. */
export function readFlags(rawArgs: string[], specs: FlagSpecs, positional = 0, env: Record<string, string | undefined> = process.env): Flags {
  rejectUnknownFlags(rawArgs, specs, positional);
  return Flags.resolve(specs, parseFlagArgs(rawArgs, specs), env);
}
