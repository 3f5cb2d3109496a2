// Decides, before anything heavy is loaded, whether this run is the cache
// plugin (no subcommand, as GOCACHEPROG runs us) or a subcommand. The answer
// lets cli.ts print the capability line as its very first act.
//
// It also normalises `--flag value` to `--flag=value` for flags that take a
// value, so that citty does not mistake the value for a subcommand, and
// moves flags given before the subcommand after it (go-cache-plugin accepts
// `go-cache-plugin --cache-dir=x serve`). A value flag never takes the next
// argument when that is a flag itself: `--http --plugin=1` is a missing
// --http value (reported by flags.ts), not an address "--plugin=1".

export const SUBCOMMANDS = ["serve", "connect", "version", "mod", "completion", "revproxy", "ci"] as const;

export interface SplitArgs {
  command: string | null;
  /** Arguments for that command (or for plugin mode), flags normalised. */
  args: string[];
  help: boolean;
  /** --version or -V: print the version (as `gostash version` does). */
  version: boolean;
}

/** "-x", "--x", "--x=1": a flag, never a value ("-" alone is a value: stdin). */
function isFlag(a: string | undefined): boolean {
  return a !== undefined && a.startsWith("-") && a.length > 1;
}

/** Flags of any command that take a value (long names and one-letter aliases). */
export function splitArgs(
  argv: string[],
  valueFlags: ReadonlySet<string>,
  aliases: ReadonlyMap<string, string> = new Map(),
): SplitArgs {
  let command: string | null = null;
  let help = false;
  let version = false;
  const before: string[] = [];
  const after: string[] = [];
  /** The next argument, as the value of the flag before it, if it is not a flag. */
  const takesNext = (i: number) => i + 1 < argv.length && !isFlag(argv[i + 1]);
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
    if (a === "--version" || a === "-V") {
      version = true;
      continue;
    }
    if (a.startsWith("-") && !a.startsWith("--") && a.length > 1) {
      // Short aliases become long flags (citty reads `-u=2` as "=2").
      const [short, ...rest] = a.slice(1).split("=");
      const long = aliases.get(short!);
      if (long) {
        if (rest.length) target.push(`--${long}=${rest.join("=")}`);
        else if (valueFlags.has(long) && takesNext(i)) target.push(`--${long}=${argv[++i]}`);
        else target.push(`--${long}`);
        continue;
      }
    }
    if (isFlag(a)) {
      const name = a.replace(/^--?/, "");
      if (!name.includes("=") && valueFlags.has(name) && takesNext(i)) {
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
  return { command, args: [...after, ...before], help, version };
}
