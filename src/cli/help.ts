// --help, rendered from the command tree (main.ts) and the flag catalogue
// (config/options.ts): what the command does, how to call it, its
// subcommands and arguments, and its flags grouped by what they configure
// (the groups of options.ts), each with its environment variable and
// default. Lines fit the terminal (80 columns when stdout is not one) and
// never end in spaces.

import type { ArgDef, ArgsDef, CommandDef, CommandMeta, Resolvable } from "citty";
import { flagSpecOf, type FlagSpec } from "../config/flags.ts";
import * as catalogue from "../config/options.ts";
import { columns, paragraphs, wrap, type Row } from "./text-layout.ts";

export interface HelpStyle {
  width: number;
  /** Bold headings (a terminal that did not ask for NO_COLOR). */
  color: boolean;
}

/** Headings of the flag groups, in the order --help shows them. */
const GROUPS: [keyof typeof catalogue, string][] = [
  ["serveFlags", "Daemon"],
  ["connectFlags", "Daemon connection"],
  ["modFlags", "Import and export"],
  ["localFlags", "Local cache"],
  ["s3Flags", "S3 (shared cache)"],
  ["modproxyFlags", "Module proxy"],
  ["revproxyFlags", "Reverse proxy"],
  ["limitFlags", "Limits"],
  ["ciFlags", "CI job summary"],
  ["logFlags", "Logging"],
];

/** Widest help, whatever the terminal: longer lines are hard to read. */
const MAX_WIDTH = 120;

/** The terminal's width for help on stdout; 80 when stdout is not a terminal. */
export function helpStyle(out: { isTTY?: boolean; columns?: number } = process.stdout, env = process.env): HelpStyle {
  const tty = out.isTTY === true;
  const cols = tty && out.columns && out.columns > 0 ? out.columns : 80;
  return { width: Math.min(cols, MAX_WIDTH), color: tty && !env.NO_COLOR };
}

/** The group (heading) of each FlagSpec in the catalogue, by identity. */
function groupTitles(): Map<FlagSpec, string> {
  const titles = new Map<FlagSpec, string>();
  for (const [name, specs] of Object.entries(catalogue) as [string, Record<string, FlagSpec>][]) {
    const title = GROUPS.find(([g]) => g === name)?.[1] ?? titleOf(name);
    for (const spec of Object.values(specs)) if (!titles.has(spec)) titles.set(spec, title);
  }
  return titles;
}

/** A group added to options.ts without a heading here: "reverseProxyFlags" -> "Reverse proxy". */
function titleOf(exportName: string): string {
  const words = exportName.replace(/Flags$/, "").replace(/([A-Z])/g, " $1").toLowerCase().trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function rank(title: string): number {
  const i = GROUPS.findIndex(([, t]) => t === title);
  // Unknown groups go before Logging, which is always last.
  return i < 0 ? GROUPS.length - 1.5 : i;
}

async function resolve<T>(v: Resolvable<T> | undefined): Promise<T | undefined> {
  return typeof v === "function" ? await (v as () => T | Promise<T>)() : await v;
}

/** "-v, --verbose", "    --cache-dir=<dir>". */
function flagLabel(name: string, def: ArgDef): string {
  const aliases = "alias" in def && def.alias ? (Array.isArray(def.alias) ? def.alias : [def.alias]) : [];
  const short = aliases.find((a) => a.length === 1);
  const value = def.type === "string" || def.type === "enum" ? `=<${("valueHint" in def && def.valueHint) || name}>` : "";
  return `${short ? `-${short}, ` : "    "}--${name}${value}`;
}

/** The command's flags as headed groups of rows; positional arguments as their own list. */
function argSections(args: ArgsDef): { positionals: Row[]; groups: [string, Row[]][] } {
  const titles = groupTitles();
  const positionals: Row[] = [];
  const groups = new Map<string, Row[]>();
  for (const [name, def] of Object.entries(args)) {
    const text = def.description ?? "";
    if (def.type === "positional") {
      positionals.push({ left: name.toUpperCase(), right: text });
      continue;
    }
    const spec = flagSpecOf(def);
    const title = (spec && titles.get(spec)) ?? "Options";
    if (!groups.has(title)) groups.set(title, []);
    groups.get(title)!.push({ left: flagLabel(name, def), right: text });
  }
  const ordered = [...groups].sort((a, b) => rank(a[0]) - rank(b[0]));
  return { positionals, groups: ordered };
}

function usageLines(path: string, args: ArgsDef, hasSubcommands: boolean): string[] {
  const defs = Object.entries(args);
  const flags = defs.some(([, d]) => d.type !== "positional") ? " [options]" : "";
  const positionals = defs
    .filter(([, d]) => d.type === "positional")
    .map(([n, d]) => ("required" in d && d.required === false ? `[${n.toUpperCase()}]` : n.toUpperCase()));
  const lines: string[] = [];
  if (!hasSubcommands || flags) lines.push(`${path}${flags}${positionals.map((p) => ` ${p}`).join("")}`);
  if (hasSubcommands) lines.push(`${path} <command> [options]`);
  return lines;
}

async function commandRows(cmd: CommandDef<any>): Promise<Row[]> {
  const rows: Row[] = [];
  for (const [name, r] of Object.entries((await resolve(cmd.subCommands)) ?? {})) {
    const meta = await resolve<CommandMeta>((await resolve<CommandDef<any>>(r))?.meta);
    if (!meta?.hidden) rows.push({ left: name, right: meta?.description ?? "" });
  }
  return rows;
}

/** The help text of cmd, called `path` ("gostash mod import"). */
export async function renderHelp(cmd: CommandDef<any>, path: string, style: HelpStyle): Promise<string> {
  const heading = (t: string) => (style.color ? `\x1b[1m${t}\x1b[22m` : t);
  const list = (rows: Row[], alignWith?: Row[]) => columns(rows, { width: style.width, alignWith });
  const meta = (await resolve<CommandMeta>(cmd.meta)) ?? {};
  const args = (await resolve<ArgsDef>(cmd.args)) ?? {};
  const subs = await commandRows(cmd);
  const { positionals, groups } = argSections(args);
  const out: string[] = [...paragraphs(meta.description ?? "", style.width), ""];
  out.push(heading("Usage:"), ...usageLines(path, args, subs.length > 0).map((l) => `  ${l}`), "");
  if (subs.length) out.push(heading("Commands:"), ...list(subs), "");
  if (positionals.length) out.push(heading("Arguments:"), ...list(positionals), "");
  // Every group's descriptions start in the same column.
  const allFlags = groups.flatMap(([, rows]) => rows);
  for (const [title, rows] of groups) out.push(heading(`${title}:`), ...list(rows, allFlags), "");
  if (subs.length) out.push(...wrap(`Run '${path} <command> --help' for the options of a command.`, style.width), "");
  return `${out.join("\n").trimEnd()}\n`;
}

/**
 * The command the arguments name, walking nested subcommands: splitArgs
 * only knows the top-level ones, so `mod import --help` arrives as `mod`
 * with "import" among its arguments, and must show import's flags.
 */
export async function helpTarget(top: CommandDef<any>, path: string, args: string[]): Promise<{ cmd: CommandDef<any>; path: string }> {
  let cmd = top;
  let name = path;
  for (const a of args) {
    if (a === "--") break;
    if (a.startsWith("-")) continue;
    const next = (await resolve(cmd.subCommands))?.[a];
    if (!next) break;
    cmd = (await resolve<CommandDef<any>>(next))!;
    name = `${name} ${a}`;
  }
  return { cmd, path: name };
}
