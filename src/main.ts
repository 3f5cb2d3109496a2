// The command tree. Each subcommand lives in its own file and is loaded
// only when it runs; plugin mode (no subcommand) is the root command.

// citty is imported where it is used: plugin mode, which `go` waits for,
// never needs it.
import type { CommandDef, Resolvable } from "citty";
import type { SplitArgs } from "./cli-args.ts";
import pluginCommand, { runPlugin } from "./commands/plugin.ts";
import { VERSION } from "./version.ts";
import { writeStderr } from "./util/std-output.ts";

const subCommands: Record<string, () => Promise<CommandDef<any>>> = {
  serve: () => import("./commands/serve.ts").then((m) => m.default),
  connect: () => import("./commands/connect.ts").then((m) => m.default),
  version: () => import("./commands/version.ts").then((m) => m.default),
  completion: () => import("./commands/completion.ts").then((m) => m.completionCommand(rootCommand)),
  mod: () => import("./commands/mod.ts").then((m) => m.default),
  ci: () => import("./commands/ci.ts").then((m) => m.default),
};

export const rootCommand: CommandDef<any> = {
  ...pluginCommand,
  meta: {
    name: "gostash",
    version: VERSION,
    description:
      "Fast Go build cache and module proxy. Run with no subcommand as GOCACHEPROG: go env -w GOCACHEPROG=$(command -v gostash)",
  },
  subCommands,
};

export class UsageError extends Error {
  override name = "UsageError";
}

async function resolve<T>(v: Resolvable<T>): Promise<T> {
  return typeof v === "function" ? (v as () => T | Promise<T>)() : v;
}

/**
 * Usage of the deepest command the arguments name: splitArgs only knows the
 * top-level subcommands, so `mod import --help` arrives as `mod` with
 * "import" among its arguments, and must show import's flags, not mod's.
 */
async function usage(top: CommandDef<any>, args: string[]): Promise<string> {
  let cmd = top;
  const names = [rootCommand.meta && (await resolve(rootCommand.meta)).name];
  for (const a of args) {
    if (a === "--") break;
    if (a.startsWith("-")) continue;
    const next = cmd.subCommands ? (await resolve(cmd.subCommands))[a] : undefined;
    if (!next) break;
    names.push(cmd.meta && (await resolve(cmd.meta)).name);
    cmd = await resolve(next);
  }
  const { renderUsage } = await import("citty");
  return renderUsage(cmd, { meta: { name: names.join(" ") } });
}

export async function main(split: SplitArgs): Promise<number> {
  const sub = split.command ? await subCommands[split.command]?.() : undefined;
  if (split.command && !sub) {
    writeStderr(`gostash: ${split.command} is not available in this build\n`);
    return 2;
  }
  const cmd = sub ?? rootCommand;
  if (split.help) {
    const { renderUsage } = await import("citty");
    const text = `${sub ? await usage(sub, split.args) : await renderUsage(rootCommand)}\n`;
    // Colours only for a terminal: help piped to a file or a pager stays plain text.
    process.stdout.write(process.stdout.isTTY && !process.env.NO_COLOR ? text : Bun.stripANSI(text));
    return 0;
  }
  try {
    // Plugin mode, which `go` waits for, parses its own flags: citty's
    // parser took 2-4 ms before the first answer.
    if (!sub) return await runPlugin(split.args);
    // So does connect, the other mode `go` runs.
    if (split.command === "connect") return await (await import("./commands/connect.ts")).runConnect(split.args);
    const { runCommand } = await import("citty");
    const { result } = await runCommand(cmd, { rawArgs: split.args });
    return typeof result === "number" ? result : 0;
  } catch (err) {
    const e = err as Error & { code?: string };
    const usage = e.name === "CLIError" || e.name === "UsageError" || (e.message ?? "").startsWith("config:");
    writeStderr(`gostash: ${usage ? e.message : (e.stack ?? e.message)}\n`);
    if (usage) writeStderr("Run 'gostash --help' for usage.\n");
    return usage ? 2 : 1;
  }
}
