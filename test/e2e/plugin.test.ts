// The real `go` command drives the compiled binary as GOCACHEPROG.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { BIN, tempDir } from "../helpers/env.ts";
import { compileSteps, go, goEnv, writeDemoModule } from "../helpers/go.ts";

const tmp = tempDir("gostash-e2e-plugin-");
const mod = join(tmp.path, "demo");
const home = join(tmp.path, "home");
const cache = join(tmp.path, "gocache");
const prog = `${BIN} --metrics`;
const env = goEnv({ gocache: cache, prog, home });
const plainEnv = goEnv({ gocache: cache, home });

beforeAll(() => {
  expect(existsSync(BIN)).toBe(true);
  writeDemoModule(mod);
});
afterAll(() => tmp.cleanup());

function countEntries(dir: string): { a: number; d: number } {
  let a = 0;
  let d = 0;
  for (const sub of readdirSync(dir)) {
    if (!/^[0-9a-f]{2}$/.test(sub)) continue;
    for (const f of readdirSync(join(dir, sub))) {
      if (f.endsWith("-a")) a++;
      else if (f.endsWith("-d")) d++;
    }
  }
  return { a, d };
}

describe("go build / test / vet / list through gostash", () => {
  test("cold build compiles and stores entries in Go's format; warm build compiles nothing", async () => {
    const cold = await go(["build", "-x", "./..."], mod, env);
    expect(cold.code).toBe(0);
    expect(compileSteps(cold.stderr).length).toBeGreaterThan(3);
    expect(cold.stderr).toContain("gostash: gets");
    const n = countEntries(cache);
    expect(n.a).toBeGreaterThan(10);
    expect(n.d).toBeGreaterThan(10);

    const warm = await go(["build", "-x", "./..."], mod, env);
    expect(warm.code).toBe(0);
    expect(compileSteps(warm.stderr)).toEqual([]);
    // the one miss is the link of cmd/demo, which `go build ./...` never caches
    expect(warm.stderr).toMatch(/misses [01]\b/);
    expect(warm.stderr).toMatch(/hits [1-9]\d+/);
  });

  test("go test is cached the second time and runs again after go clean -testcache", async () => {
    const first = await go(["test", "./..."], mod, env);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/ok\s+example.com\/demo\/greet\s+\d/);
    const second = await go(["test", "./..."], mod, env);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/ok\s+example.com\/demo\/greet\s+\(cached\)/);
    expect(second.stdout).toMatch(/ok\s+example.com\/demo\/mathx\s+\(cached\)/);

    const clean = await go(["clean", "-testcache"], mod, env);
    expect(clean.code).toBe(0);
    const third = await go(["test", "./..."], mod, env);
    expect(third.code).toBe(0);
    expect(third.stdout).not.toContain("(cached)");
    const fourth = await go(["test", "./..."], mod, env);
    expect(fourth.stdout).toContain("(cached)");
  });

  test("go vet works, twice", async () => {
    for (let i = 0; i < 2; i++) {
      const r = await go(["vet", "./..."], mod, env);
      expect(r.stderr.replace(/gostash: .*\n/g, "")).toBe("");
      expect(r.code).toBe(0);
    }
  });

  test("export files from go list -export exist after the plugin exited", async () => {
    const r = await go(["list", "-export", "-f", "{{.ImportPath}} {{.Export}}", "./...", "fmt"], mod, env);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines.length).toBeGreaterThanOrEqual(5);
    for (const line of lines) {
      const [pkg, file] = line.split(" ");
      if (pkg === "example.com/demo/cmd/demo") continue; // main packages have export data too, but check the rest
      expect(file).toBeTruthy();
      expect(existsSync(file!)).toBe(true);
      expect(statSync(file!).size).toBeGreaterThan(0);
      expect(file!.startsWith(cache)).toBe(true);
      expect(file!).toMatch(/-d$/); // no extension on DiskPaths
    }
  });

  test("the binary built through the plugin runs", async () => {
    const out = join(tmp.path, "demo-bin");
    const b = await go(["build", "-o", out, "./cmd/demo"], mod, env);
    expect(b.code).toBe(0);
    const p = Bun.spawnSync([out]);
    expect(p.stdout.toString()).toBe('{"greeting":"hello, WORLD"} 3\n');
  });

  test("entries the plugin wrote are hits for the plain go command, and the other way round", async () => {
    // plugin -> plain: the demo module is warm from the tests above.
    const plain = await go(["build", "-x", "./..."], mod, plainEnv);
    expect(plain.code).toBe(0);
    expect(compileSteps(plain.stderr)).toEqual([]);

    // plain -> plugin: a new package compiled only by plain go, then read via the plugin.
    const other = tempDir("gostash-e2e-other-");
    try {
      const m2 = join(other.path, "m2");
      writeDemoModule(m2);
      await Bun.write(join(m2, "extra", "extra.go"), "package extra\n\n// X is a value only this module has.\nconst X = 42\n");
      const byPlain = await go(["build", "-x", "./extra"], m2, plainEnv);
      expect(byPlain.code).toBe(0);
      expect(compileSteps(byPlain.stderr).length).toBeGreaterThan(0);
      const byPlugin = await go(["build", "-x", "./extra"], m2, env);
      expect(byPlugin.code).toBe(0);
      expect(compileSteps(byPlugin.stderr)).toEqual([]);
    } finally {
      other.cleanup();
    }
  });

  test("go clean -cache empties what the plugin stored", async () => {
    expect(countEntries(cache).a).toBeGreaterThan(0);
    const r = await go(["clean", "-cache"], mod, env);
    expect(r.code).toBe(0);
    expect(countEntries(cache)).toEqual({ a: 0, d: 0 });
    const again = await go(["build", "-x", "./..."], mod, env);
    expect(again.code).toBe(0);
    expect(compileSteps(again.stderr).length).toBeGreaterThan(3);
  });
});

describe("standard library", () => {
  test("go build std in a fresh cache, then warm with zero misses", async () => {
    const d = tempDir("gostash-e2e-std-");
    try {
      const e = goEnv({ gocache: join(d.path, "cache"), prog, home: join(d.path, "home") });
      const cold = await go(["build", "std"], tmp.path, e, 600_000);
      expect(cold.code).toBe(0);
      expect(cold.stderr).toMatch(/puts [1-9]\d{2,}/);
      const warm = await go(["build", "std"], tmp.path, e, 600_000);
      expect(warm.code).toBe(0);
      expect(warm.stderr).toMatch(/misses 0\b/);
      expect(warm.stderr).toMatch(/puts 0 /);
    } finally {
      d.cleanup();
    }
  }, 900_000);
});
