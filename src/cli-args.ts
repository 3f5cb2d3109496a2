// Decides, before anything heavy is loaded, whether this run is the cache
// plugin (no subcommand, as GOCACHEPROG runs us) or a subcommand. The answer
// lets cli.ts print the capability line as its very first act.
//
// It also normalises `--flag value` to `--flag=value` for flags that take a
// value, so that citty does not mistake the value for a subcommand, and
// moves flags given before the subcommand after it (go-cache-plugin accepts
// `go-cache-plugin --cache-dir=x serve`).

export const SUBCOMMANDS = ["serve", "connect", "version", "mod", "completion", "ci"] as const;

export interface SplitArgs {
  command: string | null;
  /** Arguments for that command (or for plugin mode), flags normalised. */
  args: string[];
  help: boolean;
}

/** Flags of any command that take a value (long names and one-letter aliases). */
export function splitArgs(
  argv: string[],
  valueFlags: ReadonlySet<string>,
  aliases: ReadonlyMap<string, string> = new Map(),
): SplitArgs {
  let command: string | null = null;
  let help = false;
  const before: string[] = [];
  const after: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const target = command === null ? before : after;
    if (a === "--") {
      target.push(...argv.slice(i));
      break;
    }
    if (a === "--help" || a === "-h") {
      help = true;
      continue;
    }
    if (a.startsWith("-") && !a.startsWith("--") && a.length > 1) {
      // Short aliases become long flags (citty reads `-u=2` as "=2").
      const [short, ...rest] = a.slice(1).split("=");
      const long = aliases.get(short!);
      if (long) {
        if (rest.length) target.push(`--${long}=${rest.join("=")}`);
        else if (valueFlags.has(long) && i + 1 < argv.length) target.push(`--${long}=${argv[++i]}`);
        else target.push(`--${long}`);
        continue;
      }
    }
    if (a.startsWith("-") && a.length > 1) {
      const name = a.replace(/^--?/, "");
      if (!name.includes("=") && valueFlags.has(name) && i + 1 < argv.length) {
        target.push(`${a}=${argv[++i]}`);
      } else target.push(a);
      continue;
    }
    if (command === null && (SUBCOMMANDS as readonly string[]).includes(a)) {
      command = a;
      continue;
    }
    if (command === null && a === "help") {
      help = true;
      continue;
    }
    target.push(a);
  }
  return { command, args: [...after, ...before], help };
}
