// The action's pure parts: the read-only decision for pull requests from
// forks, the daemon's environment from the inputs, and the runner's file
// formats (read back the way the runner reads them).
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
// @ts-expect-error: plain JavaScript, no type declarations
import { daemonEnv, goproxyBefore, mtimesFailure, readOnlyDecision } from "../../action/lib/settings.mjs";
// @ts-expect-error: plain JavaScript, no type declarations
import { exportVariable, input, saveState } from "../../action/lib/runner.mjs";
// @ts-expect-error: plain JavaScript, no type declarations
import { goCacheProg } from "../../action/lib/daemon.mjs";
import { tempDir } from "../helpers/env.ts";
import { parseKeyValueFile } from "../helpers/runner.ts";

const tmp = tempDir("gostash-action-settings-");
afterAll(() => tmp.cleanup());

function event(name: string, payload: unknown): Record<string, string> {
  const path = join(tmp.path, `${name}.json`);
  writeFileSync(path, JSON.stringify(payload));
  return { GITHUB_EVENT_NAME: "pull_request", GITHUB_EVENT_PATH: path, GITHUB_REPOSITORY: "org/repo" };
}

const pr = (head: string | null) => ({ pull_request: { head: { repo: head ? { full_name: head } : null }, base: { repo: { full_name: "org/repo" } } } });

describe("read-only: auto", () => {
  test("a pull request from a fork (or a deleted one) is read-only; from the same repository, or a push, it is not", () => {
    expect(readOnlyDecision("auto", event("fork", pr("someone/repo")))[0]).toBe(true);
    expect(readOnlyDecision("auto", event("deleted", pr(null)))[0]).toBe(true);
    expect(readOnlyDecision("auto", event("same", pr("org/repo")))[0]).toBe(false);
    expect(readOnlyDecision("auto", { GITHUB_EVENT_NAME: "push" })[0]).toBe(false);
    expect(readOnlyDecision("auto", { GITHUB_EVENT_NAME: "pull_request_target", GITHUB_EVENT_PATH: "/nonexistent" })).toEqual([
      true,
      "read-only: auto, pull request whose event payload cannot be read (treated as a fork)",
    ]);
  });

  test("true and false are taken as given; anything else is an error", () => {
    expect(readOnlyDecision("true", { GITHUB_EVENT_NAME: "push" })[0]).toBe(true);
    expect(readOnlyDecision("false", event("fork2", pr("someone/repo")))[0]).toBe(false);
    expect(() => readOnlyDecision("sometimes", {})).toThrow("expected auto, true or false");
  });
});

describe("inputs and runner files", () => {
  test("hyphenated inputs, the daemon's S3 variables, and GITHUB_ENV/GITHUB_STATE in the runner's multi-line form", () => {
    const saved = { ...process.env };
    try {
      const envFile = join(tmp.path, "env");
      const stateFile = join(tmp.path, "state");
      writeFileSync(envFile, "");
      writeFileSync(stateFile, "");
      Object.assign(process.env, {
        "INPUT_PATH-STYLE": "true",
        INPUT_BUCKET: " b ",
        INPUT_ENDPOINT: "http://127.0.0.1:9000",
        INPUT_REGION: "",
        GOCACHE_S3_REGION: "from-env",
        GITHUB_ENV: envFile,
        GITHUB_STATE: stateFile,
      });
      expect(input("path-style")).toBe("true");
      const env = daemonEnv(true);
      expect([env.GOCACHE_S3_BUCKET, env.GOCACHE_S3_ENDPOINT_URL, env.GOCACHE_S3_PATH_STYLE, env.GOSTASH_READ_ONLY, env.GOCACHE_S3_REGION]).toEqual([
        "b",
        "http://127.0.0.1:9000",
        "true",
        "true",
        "from-env",
      ]);
      exportVariable("GOCACHEPROG", "gostash connect 127.0.0.1:1");
      exportVariable("MULTI", "two\nlines");
      saveState("problems", JSON.stringify(["a=b"]));
      expect(parseKeyValueFile(readFileSync(envFile, "utf8"))).toEqual({ GOCACHEPROG: "gostash connect 127.0.0.1:1", MULTI: "two\nlines" });
      expect(JSON.parse(parseKeyValueFile(readFileSync(stateFile, "utf8")).problems!)).toEqual(["a=b"]);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });
});

describe("GOCACHEPROG", () => {
  test("a path with spaces or quotes is quoted the way the go command splits it (cmd/internal/quoted: no escapes)", () => {
    expect(goCacheProg("/opt/gostash/bin/gostash", "127.0.0.1:1")).toBe("/opt/gostash/bin/gostash connect 127.0.0.1:1");
    expect(goCacheProg("/home/a b/gostash", "127.0.0.1:1")).toBe("'/home/a b/gostash' connect 127.0.0.1:1");
    expect(goCacheProg("/home/it's/gostash", "127.0.0.1:1")).toBe(`"/home/it's/gostash" connect 127.0.0.1:1`);
    expect(() => goCacheProg(`/a'b"c/gostash`, "x")).toThrow("both kinds of quotes");
  });
});

describe("the GOPROXY the module proxy falls through to", () => {
  test("the environment's; else a `go env -w` setting, which the action's export would otherwise hide; else Go's default", () => {
    const base = { PATH: process.env.PATH!, HOME: tmp.path, GOENV: join(tmp.path, "go-env-file"), GOTOOLCHAIN: "local" };
    expect(goproxyBefore({ ...base, GOPROXY: "https://env.example" })).toBe("https://env.example");
    writeFileSync(base.GOENV, "");
    expect(goproxyBefore(base)).toBe("https://proxy.golang.org,direct");
    const w = Bun.spawnSync(["go", "env", "-w", "GOPROXY=https://corp.example/proxy,off"], { env: base });
    expect(w.exitCode).toBe(0);
    expect(goproxyBefore(base)).toBe("https://corp.example/proxy,off");
    expect(goproxyBefore({ ...base, PATH: "/nonexistent" })).toBe("https://proxy.golang.org,direct"); // no go on PATH yet
  });
});

describe("a failed gostash ci mtimes, as the warning tells it", () => {
  test("its summary line and the first file with its cause, never the closing '... and N more'", () => {
    const lines = ["gostash ci mtimes: /w: 900 files, 0 symlinks, 3 directories set from their content in 0.10s (9000 files/s); 25 could not be set"];
    for (let i = 0; i < 20; i++) lines.push(`gostash ci mtimes: f${i}: permission denied`);
    lines.push("gostash ci mtimes: ... and 5 more", "");
    const w = mtimesFailure(lines.join("\n"), 1);
    expect(w).toContain("25 could not be set");
    expect(w).toContain("f0: permission denied");
    expect(w).not.toContain("more");
    expect(mtimesFailure("gostash ci mtimes: /w: not a git work tree\n", 1)).toBe("gostash ci mtimes: /w: not a git work tree");
    expect(mtimesFailure("", 2)).toBe("exit 2");
  });
});

