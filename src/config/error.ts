// The error of a bad flag or variable value, or a bad combination of them.
// Its message names what the user set (`--expiry`, `GOCACHE_EXPIRY`); the
// command line turns it into exit status 2 and a pointer to the command's
// --help (main.ts).

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message.startsWith("config: ") ? message : `config: ${message}`, options);
  }
}
