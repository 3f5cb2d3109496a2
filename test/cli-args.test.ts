// Argument normalisation before citty: subcommand detection, `--flag value`,
// short aliases with values (go-cache-plugin's `-u 2`, `-c=8`).
import { describe, expect, test } from "bun:test";
import { splitArgs } from "../src/cli-args.ts";
import { FLAG_ALIASES, VALUE_FLAGS } from "../src/config/value-flags.ts";

const split = (argv: string[]) => splitArgs(argv, VALUE_FLAGS, FLAG_ALIASES);

describe("splitArgs", () => {
  test("no subcommand is plugin mode; flag values are joined", () => {
    expect(split(["--cache-dir", "/x", "--metrics"])).toEqual({ command: null, args: ["--cache-dir=/x", "--metrics"], help: false, version: false });
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
      version: false,
    });
  });

  test("a value that looks like a subcommand stays a value", () => {
    expect(split(["--prefix", "serve"]).command).toBeNull();
  });

  test("help in any position", () => {
    expect(split(["serve", "-h"]).help).toBe(true);
    expect(split(["help"]).help).toBe(true);
  });

  test("--version and -V", () => {
    expect(split(["--version"])).toEqual({ command: null, args: [], help: false, version: true });
    expect(split(["-V"]).version).toBe(true);
    expect(split(["-v"])).toEqual({ command: null, args: ["--verbose"], help: false, version: false });
  });

  test("a value flag never takes the next flag as its value (issue #15, item 6)", () => {
    expect(split(["serve", "--http", "--plugin=18081"]).args).toEqual(["--http", "--plugin=18081"]);
    expect(split(["serve", "--http", "--modproxy"]).args).toEqual(["--http", "--modproxy"]);
    expect(split(["-u", "-v"]).args).toEqual(["--upload-concurrency", "--verbose"]);
    // A value that is not a flag is still taken, "-" (stdin) included.
    expect(split(["serve", "--http", ":5970", "--plugin", "5930"]).args).toEqual(["--http=:5970", "--plugin=5930"]);
    expect(split(["--prefix", "-"]).args).toEqual(["--prefix=-"]);
  });
});
