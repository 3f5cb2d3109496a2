// What the proxy refuses to store or serve, checked after a download and
// before the file is renamed into the cache:
//
//   .zip   a readable zip whose central directory lists only files under
//          "<module>@<version>/", with clean relative names (no "..", ".",
//          empty elements, backslashes, NUL, absolute paths), no duplicate
//          names (case-folded, as golang.org/x/mod/zip), at most MAX_ZIP
//          bytes, and at most MAX_ZIP bytes uncompressed
//   .mod   at most MAX_GO_MOD bytes, with a module directive naming the
//          module (the go command refuses a dependency's go.mod without one,
//          "parsing go.mod: missing module line" in cmd/go/internal/modload,
//          and a proxy makes "module <path>" up for a module that has no
//          go.mod, modfetch.LegacyGoMod; so an HTML page or an empty body
//          is never a go.mod)
//   .info  JSON whose Version is the requested version (canonical requests)
//   list   text whose every non-blank line starts with a valid semantic
//          version (the go command reads the first field of each line);
//          an empty list is valid (a module with no tagged versions)
//
// The limits are the go command's own (cmd/go/internal/modfetch/codehost:
// MaxGoMod = 16 << 20, MaxZipFile = 500 << 20), so nothing the go command
// would accept is refused, and nothing larger is ever written. The zip is
// read from the stored temp file by zip.ts: only its tail (the end records)
// and the central directory are read, never the whole file.

import { open } from "node:fs/promises";
import { isValidSemver } from "./semver.ts";
import { ValidationError } from "./validation-error.ts";
import { fileReader, readZipDirectory, type ZipEntry } from "./zip.ts";

export const MAX_ZIP = 500 << 20;
export const MAX_GO_MOD = 16 << 20;
/** .info, list and @latest answers: small JSON or text; Go reads them whole. */
export const MAX_SMALL = 16 << 20;

/** Checks the zip stored at `path` for module@version, from its central directory (zip.ts). Throws ValidationError. */
export async function validateZip(path: string, module: string, version: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    const size = (await fh.stat()).size;
    if (size > MAX_ZIP) throw new ValidationError(`zip is ${size} bytes, more than the ${MAX_ZIP} the go command accepts`);
    checkEntries(await readZipDirectory(fileReader(fh), size), `${module}@${version}/`);
  } finally {
    await fh.close();
  }
}

/** Names under `prefix`, clean and unique (case-folded); at most MAX_ZIP bytes uncompressed in all. */
function checkEntries(entries: ZipEntry[], prefix: string): void {
  const seen = new Set<string>();
  let total = 0;
  for (const e of entries) {
    checkEntryName(e.name, prefix);
    const folded = e.name.toLowerCase();
    if (seen.has(folded)) throw new ValidationError(`zip has duplicate (case-insensitive) entry ${JSON.stringify(e.name)}`);
    seen.add(folded);
    total += e.size;
    if (total > MAX_ZIP) throw new ValidationError(`zip unpacks to more than ${MAX_ZIP} bytes`);
  }
}

function checkEntryName(name: string, prefix: string): void {
  if (!name.startsWith(prefix)) throw new ValidationError(`zip entry ${JSON.stringify(name)} is not under ${prefix}`);
  const rel = name.slice(prefix.length);
  if (rel === "") throw new ValidationError(`zip entry ${JSON.stringify(name)} has an empty name`);
  if (/[\0\\]/.test(rel) || rel.startsWith("/")) throw new ValidationError(`zip entry ${JSON.stringify(name)} has an unsafe name`);
  const elems = rel.split("/");
  // A trailing "/" (directory entry) leaves one empty last element.
  const check = rel.endsWith("/") ? elems.slice(0, -1) : elems;
  for (const e of check) {
    if (e === "" || e === "." || e === "..") throw new ValidationError(`zip entry ${JSON.stringify(name)} has an unsafe name`);
  }
}

/** The module path a go.mod declares, or null if it has no module directive. */
export function goModModulePath(text: string): string | null {
  const stripped = text.replace(/\/\/[^\n]*/g, "");
  const block = /^\s*module\s*\(\s*("[^"]*"|`[^`]*`|\S+)\s*\)/m.exec(stripped);
  const line = block ?? /^\s*module\s+("[^"]*"|`[^`]*`|\S+)/m.exec(stripped);
  if (!line) return null;
  const v = line[1]!;
  if (v.startsWith('"')) {
    try {
      return JSON.parse(v) as string;
    } catch {
      return v.slice(1, -1);
    }
  }
  if (v.startsWith("`")) return v.slice(1, -1);
  return v;
}

export function validateMod(data: Uint8Array, module: string): void {
  if (data.length > MAX_GO_MOD) throw new ValidationError(`go.mod is larger than ${MAX_GO_MOD} bytes`);
  const declared = goModModulePath(new TextDecoder().decode(data));
  if (declared === null) throw new ValidationError(`go.mod has no module directive (want module ${JSON.stringify(module)})`);
  if (declared !== module) {
    throw new ValidationError(`go.mod declares module ${JSON.stringify(declared)}, not ${JSON.stringify(module)}`);
  }
}

/** Parses and checks an .info (or @latest) answer; returns its Version. */
export function validateInfo(data: Uint8Array, wantVersion: string | null): string {
  if (data.length > MAX_SMALL) throw new ValidationError("info is too large");
  let info: unknown;
  try {
    info = JSON.parse(new TextDecoder().decode(data));
  } catch {
    throw new ValidationError("info is not JSON");
  }
  const v = (info as { Version?: unknown })?.Version;
  if (typeof v !== "string" || !v) throw new ValidationError("info has no Version");
  if (wantVersion !== null && v !== wantVersion) throw new ValidationError(`info is for version ${v}, not ${wantVersion}`);
  return v;
}

export function validateList(data: Uint8Array): void {
  if (data.length > MAX_SMALL) throw new ValidationError("list is too large");
  const lines = new TextDecoder().decode(data).split("\n");
  for (let i = 0; i < lines.length; i++) {
    const first = lines[i]!.trim().split(/\s+/)[0]!;
    if (first !== "" && !isValidSemver(first)) {
      throw new ValidationError(`list line ${i + 1} is not a version: ${JSON.stringify(lines[i]!.slice(0, 80))}`);
    }
  }
}
