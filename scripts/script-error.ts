// How the scripts in scripts/ fail. An expected failure (a missing file, a
// bad argument, a tool that is not installed) is a ScriptError: one line on
// stderr, exit 1. Anything else is a bug and keeps its stack trace.

export class ScriptError extends Error {
  override name = "ScriptError";
}

/** Runs a script's main part, turning a ScriptError (or a bad option) into one line and exit status 1. */
export async function runScript(name: string, main: () => unknown): Promise<void> {
  try {
    await main();
  } catch (err) {
    // node:util parseArgs refusing an option is a usage error too.
    const usage = String((err as { code?: unknown }).code ?? "").startsWith("ERR_PARSE_ARGS");
    if (!(err instanceof ScriptError) && !usage) throw err;
    console.error(usage ? `${name}: ${(err as Error).message}` : (err as Error).message);
    process.exit(1);
  }
}
