// Module paths and versions, checked before anything touches the file
// system. The rules are golang.org/x/mod/module's (CheckPath, checkElem,
// EscapePath/UnescapePath, EscapeVersion/UnescapeVersion) and
// golang.org/x/mod/semver's canonical form. Every request path that names a
// file in the cache goes through parseModRequest (layout.ts), which checks
// its elements here; whatever it accepts is a path of plain, safe elements
// that cannot leave the cache directory (no "..", no leading dot in module
// elements, no NUL, no backslash, no absolute path, ASCII only).

export class PathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PathError";
  }
}

const WINDOWS_RESERVED = new Set([
  "CON", "PRN", "AUX", "NUL",
  "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
  "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
]);

type Kind = "module" | "file";

/** module.modPathOK: letters, digits and -._~ ; fileNameOK adds more punctuation. */
function charOK(c: string, kind: Kind): boolean {
  if ((c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9")) return true;
  if (kind === "module") return "-._~".includes(c);
  // fileNameOK's ASCII set, minus the space (never useful in a URL path).
  return "!#$%&()+,-.=@[]^_{}~".includes(c);
}

/** module.checkElem. */
function checkElem(elem: string, kind: Kind): void {
  if (elem === "") throw new PathError("empty path element");
  if (/^\.+$/.test(elem)) throw new PathError(`invalid path element ${JSON.stringify(elem)}`);
  if (elem[0] === "." && kind === "module") throw new PathError("leading dot in path element");
  if (elem.endsWith(".")) throw new PathError("trailing dot in path element");
  for (const c of elem) {
    if (!charOK(c, kind)) throw new PathError(`invalid char ${JSON.stringify(c)}`);
  }
  // Windows disallows a bunch of path elements, case-insensitively, with or
  // without an extension.
  const short = (elem.includes(".") ? elem.slice(0, elem.indexOf(".")) : elem).toUpperCase();
  if (WINDOWS_RESERVED.has(short)) throw new PathError(`${JSON.stringify(short)} disallowed as path element component on Windows`);
  // And short names like PROGRA~1.
  const tilde = short.lastIndexOf("~");
  if (tilde >= 0 && /^[0-9]+$/.test(short.slice(tilde + 1))) {
    throw new PathError("trailing tilde and digits in path element");
  }
}

/** module.CheckPath: is path a valid module path? Throws PathError if not. */
export function checkModulePath(path: string): void {
  if (path === "") throw new PathError("empty module path");
  if (path.startsWith("/")) throw new PathError("leading slash");
  if (path.endsWith("/")) throw new PathError("trailing slash");
  if (path.includes("//")) throw new PathError("double slash");
  const elems = path.split("/");
  const first = elems[0]!;
  if (!first.includes(".")) throw new PathError("missing dot in first path element");
  if (first.startsWith("-")) throw new PathError("leading dash in first path element");
  for (const c of first) {
    if (!((c >= "a" && c <= "z") || (c >= "0" && c <= "9") || c === "-" || c === ".")) {
      throw new PathError(`invalid char ${JSON.stringify(c)} in first path element`);
    }
  }
  for (const e of elems) checkElem(e, "module");
  const major = /\/v([0-9]+)$/.exec(path);
  if (major && !path.startsWith("gopkg.in/")) {
    const n = major[1]!;
    if (n.startsWith("0") || n === "1") throw new PathError(`invalid major version suffix /v${n}`);
  }
}

/** module.EscapePath: upper-case letters become "!" + lower case. */
export function escapePath(path: string): string {
  checkModulePath(path);
  return escapeString(path);
}

function escapeString(s: string): string {
  let out = "";
  for (const c of s) {
    if (c === "!" || c.charCodeAt(0) >= 0x80) throw new PathError(`invalid char ${JSON.stringify(c)}`);
    out += c >= "A" && c <= "Z" ? `!${c.toLowerCase()}` : c;
  }
  return out;
}

function unescapeString(s: string): string {
  let out = "";
  let bang = false;
  for (const c of s) {
    if (c.charCodeAt(0) >= 0x80) throw new PathError("non-ASCII character");
    if (bang) {
      bang = false;
      if (!(c >= "a" && c <= "z")) throw new PathError("invalid escape");
      out += c.toUpperCase();
      continue;
    }
    if (c === "!") {
      bang = true;
      continue;
    }
    if (c >= "A" && c <= "Z") throw new PathError("upper-case letter in escaped path");
    out += c;
  }
  if (bang) throw new PathError("trailing escape character");
  return out;
}

/** module.UnescapePath: the module path an escaped one stands for. */
export function unescapePath(escaped: string): string {
  const path = unescapeString(escaped);
  checkModulePath(path);
  return path;
}

/** module.EscapeVersion. */
export function escapeVersion(v: string): string {
  checkVersionElem(v);
  return escapeString(v);
}

/** module.UnescapeVersion. */
export function unescapeVersion(escaped: string): string {
  const v = unescapeString(escaped);
  checkVersionElem(v);
  return v;
}

/** A version (or query) as it may appear in a file name. */
function checkVersionElem(v: string): void {
  if (v.includes("/")) throw new PathError("slash in version");
  checkElem(v, "file");
}

const NUM = "(0|[1-9][0-9]*)";
const PRE_ID = "(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)";
const CANONICAL = new RegExp(`^v${NUM}\\.${NUM}\\.${NUM}(-${PRE_ID}(\\.${PRE_ID})*)?(\\+incompatible)?$`);

/**
 * Is v a canonical semantic version (semver.Canonical(v) == v, allowing the
 * "+incompatible" build suffix the go command uses)? Only files for such
 * versions are immutable and kept forever; anything else is a query.
 */
export function isCanonicalVersion(v: string): boolean {
  return CANONICAL.test(v);
}
