// The command tree. Each subcommand lives in its own file and is loaded
// only when it runs; plugin mode (no subcommand) is the root command.
// cli.ts has decided the mode (cli/start.ts) and, for the two modes the go
// command runs, checked their arguments already.

// citty is imported where it is used: plugin mode, which `go` waits for,
// never needs it.
import type { CommandDef } from "citty";
import type { SplitArgs } from "./cli-args.ts";
import { commandName, reportError } from "./cli/errors.ts";
import type { Start } from "./cli/start.ts";
import pluginCommand, { runPlugin } from "./commands/plugin.ts";
import { VERSION } from "./version.ts";
import { writeStderr } from "./util/std-output.ts";

const subCommands: Record<string, () => Promise<CommandDef<any>>> = {
  serve: () => import("./commands/serve.ts").then((m) => m.default),
  connect: () => import("./commands/connect.ts").then((m) => m.default),
  version: () => import("./commands/version.ts").then((m) => m.default),
  completion: () => import("./commands/completion.ts").then((m) => m.completionCommand(rootCommand)),
  mod: () => import("./commands/mod.ts").then((m) => m.default),
  revproxy: () => import("./commands/revproxy.ts").then((m) => m.default),
  ci: () => import("./commands/ci.ts").then((m) => m.default),
};

export const rootCommand: CommandDef<any> = {
  ...pluginCommand,
  meta: {
    name: "gostash",
    version: VERSION,
    // First line: completion menus; the rest: --help, and `gostash` typed at a terminal.
    description:
      "Fast Go build cache and module proxy.\n" +
      "With no subcommand, gostash is the go command's build cache: the go command runs it (GOCACHEPROG) and talks to it on stdin/stdout. Turn it on with:\n" +
      "  go env -w GOCACHEPROG=$(command -v gostash)",
  },
  subCommands,
};

/** Help on stdout: a person asked for it (--help, or `gostash` typed at a terminal). */
async function printHelp(split: SplitArgs, sub: CommandDef<any> | undefined): Promise<void> {
  const { helpStyle, helpTarget, renderHelp } = await import("./cli/help.ts");
  const { cmd, path } = sub ? await helpTarget(sub, `gostash ${split.command}`, split.args) : { cmd: rootCommand, path: "gostash" };
  process.stdout.write(await renderHelp(cmd, path, helpStyle()));
}

export async function main(split: SplitArgs, start: Start): Promise<number> {
  const sub = split.command ? await subCommands[split.command]?.() : undefined;
  if (split.command && !sub) {
    writeStderr(`gostash: ${split.command} is not available in this build\n`);
    return 2;
  }
  try {
    switch (start.mode) {
      case "help":
        await printHelp(split, sub);
        return 0;
      case "version":
        process.stdout.write(`${(await import("./commands/version.ts")).versionLine()}\n`);
        return 0;
      // The two modes `go` runs parse their own flags (cli/start.ts): citty's
      // parser took 2-4 ms before the first answer.
      case "plugin":
        return await runPlugin(start.flags);
      case "connect":
        return await (await import("./commands/connect.ts")).runConnect(start.flags, start.config);
    }
    const { runCommand } = await import("citty");
    const { result } = await runCommand(sub!, { rawArgs: split.args });
    return typeof result === "number" ? result : 0;
  } catch (err) {
    return reportError(err, commandName(split.command, split.args));
  }
}
