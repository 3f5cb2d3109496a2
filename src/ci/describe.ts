// What a cached output is, told from its first bytes, for the "slowest
// misses" of `gostash ci summary`: the go command never tells the cache
// which package an action belongs to, but most outputs say it themselves.
//
//   "ok  \t<pkg>\t..."             a passed test's output         -> test <pkg>
//   "# test log\n..."              the files and variables a test
//                                  read (the test run's own entry;
//                                  its output is put right after) -> test <pkg of that output>
//   "!<arch>\n"                    a package archive (compile)    -> compile <pkg>
//   ELF / Mach-O / PE magic        a linked executable            -> link
//   "go index v2"                  the go command's module index
//   gob-encoded "gobFact"s         go vet's analysis facts        -> vet
//   "./x.go\n./y.go\n"             a package's source file list
// The package of an archive comes from the compiler's debug info symbol
// "go:cuinfo.packagename.<path>": symbol names are stored back to back in
// the object's string table, so the path is the longest prefix of what
// follows that the object also uses as "<path>." elsewhere. Best effort:
// anything not recognised is described by its size only.

import { closeSync, openSync, readSync } from "node:fs";
import { formatBytes } from "../util/bytes.ts";

const HEAD_BYTES = 4 << 20;
const PKG_MARK = "go:cuinfo.packagename.";

function head(path: string, n: number): Buffer | null {
  let fd: number | null = null;
  try {
    fd = openSync(path, "r");
    const b = Buffer.alloc(n);
    return b.subarray(0, readSync(fd, b, 0, n, 0));
  } catch {
    return null;
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** The package path an archive was compiled for, or null. */
export function archivePackage(s: string): string | null {
  const i = s.indexOf(PKG_MARK);
  if (i < 0) return null;
  const start = i + PKG_MARK.length;
  const cand = /^[A-Za-z0-9_.\/~+-]+/.exec(s.slice(start, start + 512))?.[0] ?? "";
  for (let n = cand.length; n > 0; n--) {
    const p = cand.slice(0, n);
    const at = s.indexOf(`${p}.`);
    if ((at >= 0 && at !== start) || s.includes(`"${p}"`)) return p;
  }
  return null;
}

/** The package of a test output ("ok  \t<pkg>\t0.01s"), or null. */
export function testPackage(text: string): string | null {
  return /^ok\s+(\S+)\s/m.exec(text)?.[1] ?? null;
}

/** A short description of the output at path (size included); `next` are the outputs put right after it. */
export function describeOutput(path: string, size: number, next: string[] = []): string {
  const b = head(path, Math.min(HEAD_BYTES, Math.max(size, 1)));
  const bytes = formatBytes(size);
  if (!b) return `output no longer in the cache (${bytes})`;
  const start = b.toString("latin1", 0, 16);
  if (start.startsWith("ok  \t")) return `test ${testPackage(b.toString("latin1")) ?? "?"}`;
  if (start.startsWith("# test log")) {
    for (const p of next) {
      const pkg = testPackage(head(p, 4096)?.toString("latin1") ?? "");
      if (pkg) return `test ${pkg}`;
    }
    return "test run";
  }
  if (start.startsWith("!<arch>\n")) {
    const pkg = archivePackage(b.toString("latin1"));
    return pkg ? `compile ${pkg} (${bytes})` : `compile (package archive, ${bytes})`;
  }
  if (start.startsWith("\x7fELF") || start.startsWith("\xcf\xfa\xed\xfe") || start.startsWith("MZ")) return `link (executable, ${bytes})`;
  if (start.startsWith("go index")) return `module index (${bytes})`;
  if (b.subarray(0, 64).includes("gobFact")) return `vet (analysis facts, ${bytes})`;
  if (start.startsWith("./")) return `source file list (${bytes})`;
  return `output (${bytes})`;
}
