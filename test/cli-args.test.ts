// Argument normalisation before citty: subcommand detection, `--flag value`,
// short aliases with values (go-cache-plugin's `-u 2`, `-c=8`).
import { describe, expect, test } from "bun:test";
import { splitArgs } from "../src/cli-args.ts";
import { FLAG_ALIASES, VALUE_FLAGS } from "../src/config/value-flags.ts";

const split = (argv: string[]) => splitArgs(argv, VALUE_FLAGS, FLAG_ALIASES);

describe("splitArgs", () => {
  test("no subcommand is plugin mode; flag values are joined", () => {
    expect(split(["--cache-dir", "/x", "--metrics"])).toEqual({ command: null, args: ["--cache-dir=/x", "--metrics"], help: false });
  });

  test("short aliases become long flags, with or without a value", () => {
    expect(split(["-u", "2", "-c=8", "-v"]).args).toEqual(["--upload-concurrency=2", "--concurrency=8", "--verbose"]);
    expect(split(["-u=3"]).args).toEqual(["--upload-concurrency=3"]);
  });

  test("flags before the subcommand move after it (go-cache-plugin style)", () => {
    expect(split(["--cache-dir=/c", "serve", "--plugin", "5930"])).toEqual({
      command: "serve",
      args: ["--plugin=5930", "--cache-dir=/c"],
      help: false,
    });
  });

  test("a value that looks like a subcommand stays a value", () => {
    expect(split(["--prefix", "serve"]).command).toBeNull();
  });

  test("help in any position", () => {
    expect(split(["serve", "-h"]).help).toBe(true);
    expect(split(["help"]).help).toBe(true);
  });
});
