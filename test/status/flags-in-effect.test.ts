// "Flags in effect" on the status page: what the daemon runs with, from its
// checked settings, with every secret hidden (tokens given as flags or as
// environment variables, passwords inside URLs).
import { describe, expect, test } from "bun:test";
import { Flags } from "../../src/config/flags.ts";
import { limitFlags, localFlags, logFlags, modproxyFlags, s3Flags, serveFlags } from "../../src/config/options.ts";
import { flagsInEffect, formatDuration, hideUrlPasswords } from "../../src/http/status/flags-in-effect.ts";

const specs = { ...logFlags, ...localFlags, ...s3Flags, ...serveFlags, ...limitFlags, ...modproxyFlags };

function effect(parsed: Record<string, unknown>, env: Record<string, string> = {}) {
  return new Map(flagsInEffect(specs, Flags.resolve(specs, parsed, env)).map((f) => [f.name, f]));
}

describe("flags in effect", () => {
  test("each with its value and what set it: the flag, its variable, or the default", () => {
    const f = effect({ "max-size": "10GiB", plugin: "/run/g.sock", "idle-timeout": "90s" }, { GOSTASH_MAX_CONNECTIONS: "64" });
    expect(f.get("--max-size")).toEqual({ name: "--max-size", value: "10.0 GiB", source: "--max-size" });
    expect(f.get("--plugin")).toEqual({ name: "--plugin", value: "/run/g.sock", source: "--plugin" });
    expect(f.get("--idle-timeout")).toEqual({ name: "--idle-timeout", value: "1m30s", source: "--idle-timeout" });
    expect(f.get("--max-connections")).toEqual({ name: "--max-connections", value: "64", source: "GOSTASH_MAX_CONNECTIONS" });
    expect(f.get("--max-inflight")!.source).toBe("default");
    expect(f.has("--bucket")).toBe(false); // no value: not listed
  });

  test("tokens are *** whether given as flags or in the environment, and never appear anywhere", () => {
    const secretRW = "rw-7f3a9c-secret";
    const secretRO = "ro-51bd02-secret";
    const list = flagsInEffect(specs, Flags.resolve(specs, { token: secretRW }, { GOSTASH_READ_TOKEN: secretRO }));
    expect(list.find((f) => f.name === "--token")).toEqual({ name: "--token", value: "***", source: "--token" });
    expect(list.find((f) => f.name === "--read-token")).toEqual({ name: "--read-token", value: "***", source: "GOSTASH_READ_TOKEN" });
    const text = JSON.stringify(list);
    expect(text).not.toContain(secretRW);
    expect(text).not.toContain(secretRO);
  });

  test("passwords in URLs are hidden, the rest of the URL kept", () => {
    const f = effect({ upstream: "https://bob:hunter2@goproxy.corp/mod,https://proxy.golang.org", "s3-endpoint-url": "http://key@minio:9000" });
    expect(f.get("--upstream")!.value).toBe("https://bob:***@goproxy.corp/mod,https://proxy.golang.org");
    expect(f.get("--s3-endpoint-url")!.value).toBe("http://***@minio:9000");
    expect(hideUrlPasswords("no url here: a@b")).toBe("no url here: a@b");
  });

  test("durations as they would be written", () => {
    expect([0, 250, 1000, 90_000, 600_000, 3_600_000 + 1500, 2 * 86_400_000].map(formatDuration)).toEqual(["0", "250ms", "1s", "1m30s", "10m", "1h1s500ms", "2d"]);
  });
});
