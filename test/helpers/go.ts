// Drives the real `go` command for end-to-end tests: an isolated environment
// per test (own GOCACHE, GOPATH, no network) and a small multi-package
// module with tests.
import { mkdirSync, writeFileSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { run, type RunResult } from "./env.ts";

export interface GoEnvOptions {
  gocache: string;
  /** GOCACHEPROG value; omit for the plain go cache. */
  prog?: string;
  home: string;
  extra?: Record<string, string>;
}

export function goEnv(o: GoEnvOptions): Record<string, string | undefined> {
  return {
    GOCACHE: o.gocache,
    GOCACHEPROG: o.prog ?? "",
    GOPATH: join(o.home, "gopath"),
    GOMODCACHE: join(o.home, "gopath", "pkg", "mod"),
    HOME: o.home,
    XDG_CACHE_HOME: join(o.home, ".cache"),
    GOFLAGS: "-mod=mod",
    GOPROXY: "off",
    GOTOOLCHAIN: "local",
    GOTELEMETRY: "off",
    GOENV: "off",
    CGO_ENABLED: "0",
    ...o.extra,
  };
}

export function go(args: string[], cwd: string, env: Record<string, string | undefined>, timeoutMs?: number): Promise<RunResult> {
  return run(["go", ...args], { cwd, env, timeoutMs });
}

/** Writes module example.com/demo: three packages, a command and tests. */
export function writeDemoModule(dir: string): void {
  const files: Record<string, string> = {
    "go.mod": "module example.com/demo\n\ngo 1.22\n",
    "greet/greet.go": `package greet\n\nimport "strings"\n\n// Hello greets name.\nfunc Hello(name string) string { return "hello, " + strings.ToUpper(name) }\n`,
    "greet/greet_test.go": `package greet\n\nimport "testing"\n\nfunc TestHello(t *testing.T) {\n\tif got := Hello("go"); got != "hello, GO" {\n\t\tt.Fatalf("got %q", got)\n\t}\n}\n`,
    "mathx/mathx.go": `package mathx\n\nimport "sort"\n\n// Median returns the median of xs.\nfunc Median(xs []float64) float64 {\n\ts := append([]float64(nil), xs...)\n\tsort.Float64s(s)\n\tif len(s) == 0 {\n\t\treturn 0\n\t}\n\treturn s[len(s)/2]\n}\n`,
    "mathx/mathx_test.go": `package mathx\n\nimport "testing"\n\nfunc TestMedian(t *testing.T) {\n\tif m := Median([]float64{3, 1, 2}); m != 2 {\n\t\tt.Fatal(m)\n\t}\n}\n`,
    "internal/store/store.go": `package store\n\nimport (\n\t"encoding/json"\n\t"sync"\n)\n\n// Store is a tiny JSON key-value store.\ntype Store struct {\n\tmu sync.Mutex\n\tm  map[string]string\n}\n\nfunc New() *Store { return &Store{m: map[string]string{}} }\n\nfunc (s *Store) Set(k, v string) { s.mu.Lock(); s.m[k] = v; s.mu.Unlock() }\n\nfunc (s *Store) JSON() ([]byte, error) { s.mu.Lock(); defer s.mu.Unlock(); return json.Marshal(s.m) }\n`,
    "cmd/demo/main.go": `package main\n\nimport (\n\t"fmt"\n\n\t"example.com/demo/greet"\n\t"example.com/demo/internal/store"\n\t"example.com/demo/mathx"\n)\n\nfunc main() {\n\ts := store.New()\n\ts.Set("greeting", greet.Hello("world"))\n\tb, _ := s.JSON()\n\tfmt.Println(string(b), mathx.Median([]float64{1, 5, 3}))\n}\n`,
  };
  // The go command does not cache results built from files modified in the
  // last two seconds (they may still be changing), so files written just
  // before a fast cold build would make the warm build miss: date them back.
  const past = new Date(Date.now() - 3600_000);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
    utimesSync(join(dir, name), past, past);
  }
}

/**
 * Lines of `go build -x` output that run the compiler or assembler. (Linking
 * a main package is never cached by `go build ./...`, so it is not counted.)
 */
export function compileSteps(stderr: string): string[] {
  return stderr.split("\n").filter((l) => /\/(compile|asm)( |$)/.test(l) && !l.includes("-V=full"));
}
