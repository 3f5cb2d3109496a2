// Module paths, versions and request parsing (golang.org/x/mod/module
// rules), upstream URL escaping, zip/mod/info/list validation, GOPROXY list
// parsing, --sumdb parsing.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  checkModulePath,
  escapePath,
  escapeVersion,
  isCanonicalVersion,
  unescapePath,
  unescapeVersion,
} from "../../src/modproxy/module/path.ts";
import { parseModRequest, urlPathOf } from "../../src/modproxy/module/layout.ts";
import { parseSumdbs } from "../../src/modproxy/sumdb/databases.ts";
import { parseUpstreams } from "../../src/modproxy/upstream/fetch.ts";
import { goModModulePath, validateInfo, validateList, validateMod, validateZip } from "../../src/modproxy/module/validate.ts";
import { tempDir } from "../helpers/env.ts";
import { goZip, zipEntries } from "./helpers.ts";

describe("module paths", () => {
  test("escape and unescape upper-case letters", () => {
    expect(escapePath("github.com/BurntSushi/toml")).toBe("github.com/!burnt!sushi/toml");
    expect(unescapePath("github.com/!burnt!sushi/toml")).toBe("github.com/BurntSushi/toml");
    expect(escapeVersion("v1.0.0-RC1")).toBe("v1.0.0-!r!c1");
    expect(unescapeVersion("v1.0.0-!r!c1")).toBe("v1.0.0-RC1");
  });

  test("valid module paths", () => {
    for (const p of ["example.com/a", "golang.org/x/mod", "github.com/a-b/c_d.e~f", "example.com/m/v2", "gopkg.in/yaml.v3", "k8s.io/api"]) {
      expect(() => checkModulePath(p)).not.toThrow();
    }
  });

  test("invalid module paths", () => {
    for (const p of [
      "",
      "/abs/path",
      "example.com/",
      "example.com//a",
      "example.com/../etc",
      "example.com/./a",
      "example.com/.hidden",
      "example.com/a.",
      "nodot/a",
      "-example.com/a",
      "Example.com/a",
      "example.com/a b",
      "example.com/a\\b",
      "example.com/a\0b",
      "example.com/con",
      "example.com/PROGRA~1",
      "example.com/m/v1",
      "example.com/m/v02",
      "example.com/ä",
    ]) {
      expect(() => checkModulePath(p), p).toThrow();
    }
  });

  test("bad escapes are refused", () => {
    for (const e of ["github.com/Burnt/x", "github.com/!/x", "github.com/!1/x", "github.com/x!"]) expect(() => unescapePath(e), e).toThrow();
  });

  test("canonical versions", () => {
    for (const v of ["v1.0.0", "v0.0.0-20240102030405-abcdefabcdef", "v2.3.4+incompatible", "v1.0.0-rc.1", "v1.2.3-0.20240101000000-0123456789ab"]) {
      expect(isCanonicalVersion(v), v).toBe(true);
    }
    for (const v of ["v1", "v1.0", "1.0.0", "v01.0.0", "v1.0.0+meta", "master", "v1.0.0-01"]) expect(isCanonicalVersion(v), v).toBe(false);
  });
});

describe("request parsing", () => {
  test("the GOPROXY endpoints", () => {
    expect(parseModRequest("example.com/!upper/@v/list")).toEqual({ kind: "list", module: "example.com/Upper", escModule: "example.com/!upper" });
    expect(parseModRequest("example.com/a/@latest")).toMatchObject({ kind: "latest", module: "example.com/a" });
    expect(parseModRequest("example.com/a/@v/v1.0.0.zip")).toMatchObject({ kind: "file", file: "zip", version: "v1.0.0", canonical: true });
    expect(parseModRequest("example.com/a/@v/master.info")).toMatchObject({ kind: "file", file: "info", version: "master", canonical: false });
    expect(parseModRequest("sumdb/sum.golang.org/latest")).toEqual({ kind: "sumdb", rest: "sum.golang.org/latest" });
  });

  test("paths go to an upstream escaped as the go command escapes them", () => {
    // Versions may hold characters a URL path cannot carry as they are; the
    // decoded path used to be sent as it was ("#frag" cut the URL short,
    // "%41" reached the upstream as "A").
    expect(urlPathOf("example.com/a/@v/#frag.info")).toBe("example.com/a/@v/%23frag.info");
    expect(urlPathOf("example.com/a/@v/%41.info")).toBe("example.com/a/@v/%2541.info");
    expect(urlPathOf("example.com/a/@v/a&b=c?d.info")).toBe("example.com/a/@v/a&b=c%3Fd.info");
    expect(urlPathOf("github.com/!burnt!sushi/toml/@v/v2.0.0+incompatible.mod")).toBe("github.com/%21burnt%21sushi/toml/@v/v2.0.0+incompatible.mod");
    expect(urlPathOf("lookup/example.com/m@v1.0.0")).toBe("lookup/example.com/m@v1.0.0");
    expect(decodeURIComponent(urlPathOf("x/@v/{}[]^ (é).info"))).toBe("x/@v/{}[]^ (é).info");
  });

  test("traversal and junk are refused", () => {
    for (const p of [
      "../../etc/passwd",
      "example.com/../../x/@v/list",
      "example.com/%2e%2e/@v/list",
      "example.com/%2E%2E/%2e%2e/x/@v/list",
      "%2fetc/passwd/@v/list",
      "/etc/passwd/@v/list",
      "example.com/a%00b/@v/list",
      "example.com/a\\..\\b/@v/list",
      "example.com/a%5c..%5cb/@v/list",
      "example.com/a/@v/..%2f..%2f..%2fx.info",
      "example.com/a/@v/%2e%2e.info",
      "example.com/a/@v/master.zip",
      "example.com/a/@v/v1.0.0.exe",
      "example.com/a/@v/",
      "example.com/a",
      "example.com/a/@v/v1.0.0.zip%00",
      "example.com/a/%ZZ/@v/list",
    ]) {
      expect(() => parseModRequest(p), p).toThrow();
    }
  });
});

describe("validation", () => {
  test("zips", async () => {
    const t = tempDir();
    try {
      const check = async (bytes: Uint8Array) => {
        const f = join(t.path, "z.zip");
        writeFileSync(f, bytes);
        return validateZip(f, "example.com/Mod", "v1.0.0");
      };
      await check(goZip("example.com/Mod", "v1.0.0", { "go.mod": "module example.com/Mod\n", "a/b.go": "package a\n" }));
      await expect(check(goZip("example.com/Other", "v1.0.0", { "go.mod": "x" }))).rejects.toThrow(/not under/);
      await expect(check(goZip("example.com/Mod", "v1.0.1", { "go.mod": "x" }))).rejects.toThrow(/not under/);
      await expect(check(zipEntries({ "example.com/Mod@v1.0.0/../../evil": "x" }))).rejects.toThrow(/unsafe/);
      await expect(check(zipEntries({ "example.com/Mod@v1.0.0/a": "x", "example.com/Mod@v1.0.0/A": "y" }))).rejects.toThrow(/duplicate/);
      await expect(check(new TextEncoder().encode("this is not a zip file at all, no sir"))).rejects.toThrow(/not a zip/);
      const good = goZip("example.com/Mod", "v1.0.0", { "go.mod": "module example.com/Mod\n" });
      await expect(check(good.subarray(0, good.length - 10))).rejects.toThrow();
    } finally {
      t.cleanup();
    }
  });

  test("go.mod module line", () => {
    expect(goModModulePath('// c\nmodule "example.com/q" // x\n')).toBe("example.com/q");
    expect(goModModulePath("module (\n\texample.com/b\n)\n")).toBe("example.com/b");
    expect(goModModulePath("go 1.22\n")).toBeNull();
    const enc = (s: string) => new TextEncoder().encode(s);
    validateMod(enc("module example.com/a\n"), "example.com/a");
    validateMod(enc('// Package a.\nmodule "example.com/a" // quoted\n\ngo 1.22\n'), "example.com/a");
    validateMod(enc("go 1.22\n\nmodule example.com/a\n"), "example.com/a");
    expect(() => validateMod(enc("module example.com/b\n"), "example.com/a")).toThrow(/declares/);
    // A go.mod without a module directive was accepted here, as if a module
    // with no go.mod could be served that way; but a proxy serves such a
    // module's go.mod as "module <path>" (modfetch.LegacyGoMod), and the go
    // command refuses a dependency's go.mod without one ("parsing go.mod:
    // missing module line", cmd/go/internal/modload). So it is an error
    // page or a cut download, and it would be kept forever.
    for (const bad of ["go 1.22\n", "", "<html><body>Sign in</body></html>\n", "// module example.com/a\n"]) {
      expect(() => validateMod(enc(bad), "example.com/a"), bad).toThrow(/no module directive/);
    }
  });

  test("list: every non-blank line starts with a version", () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    for (const good of ["", "\n", "v1.0.0\n", "v1.0.0\nv1.1.0\n", "v2.0.0+incompatible\r\nv1.0.0-rc.1\r\n", "v1.0.0 2024-01-02T03:04:05Z\n\n", "v1.2\nv0.0.0-20240102030405-abcdefabcdef"]) {
      expect(() => validateList(enc(good)), JSON.stringify(good)).not.toThrow();
    }
    for (const bad of ["<!DOCTYPE html>\n<html></html>\n", "v1.0.0\nnot-a-version\n", "1.0.0\n", "v1.0.0-01\n", "{}"]) {
      expect(() => validateList(enc(bad)), JSON.stringify(bad)).toThrow(/not a version/);
    }
  });

  test("info version", () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    expect(validateInfo(enc('{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}'), "v1.0.0")).toBe("v1.0.0");
    expect(() => validateInfo(enc('{"Version":"v1.0.1"}'), "v1.0.0")).toThrow(/not v1.0.0/);
    expect(() => validateInfo(enc("nope"), null)).toThrow(/JSON/);
  });
});

describe("configuration", () => {
  test("GOPROXY-style upstream lists", () => {
    expect(parseUpstreams("https://a.example,https://b.example|file:///tmp/x")).toEqual([
      { url: "https://a.example", next: "," },
      { url: "https://b.example", next: "|" },
      { url: "file:///tmp/x", dir: "/tmp/x", next: null },
    ]);
    expect(parseUpstreams("https://a.example,off,https://b.example").map((u) => u.url)).toEqual(["https://a.example", "off"]);
    expect(() => parseUpstreams("https://a.example,direct")).toThrow(/direct/);
    expect(() => parseUpstreams("ftp://x")).toThrow(/scheme/);
  });

  test("--sumdb", () => {
    expect(parseSumdbs(undefined)).toEqual([{ name: "sum.golang.org", url: null }]);
    expect(parseSumdbs("true")).toEqual([{ name: "sum.golang.org", url: null }]);
    expect(parseSumdbs("off")).toEqual([]);
    expect(parseSumdbs("sum.golang.org,sum.test=http://127.0.0.1:9/")).toEqual([
      { name: "sum.golang.org", url: null },
      { name: "sum.test", url: "http://127.0.0.1:9" },
    ]);
    expect(() => parseSumdbs("../x")).toThrow(/invalid/);
  });
});
