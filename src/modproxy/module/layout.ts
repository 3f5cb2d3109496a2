// The GOPROXY protocol's URL layout, which is also the layout of the
// proxy's disk store (storage/store.ts) and of $GOMODCACHE/cache/download:
//
//   <escaped module>/@v/list                  versions
//   <escaped module>/@latest                  latest version info
//   <escaped module>/@v/<escaped version>.info|.mod|.zip
//   sumdb/<name>/...                          checksum database (sumdb/)
//
// parseModRequest turns the part of a proxy URL after the mount point into
// a checked request (path.ts rules); the *Rel functions build the same
// paths back from checked elements. These paths are decoded text (the
// store's file names); urlPathOf escapes one again before it goes into a
// URL, because versions may hold "#", "%", "&" and other characters that a
// URL path cannot carry as they are.

import { isCanonicalVersion, PathError, unescapePath, unescapeVersion } from "./path.ts";

export type ModFile = "info" | "mod" | "zip";

export type ModRequest =
  | { kind: "list"; module: string; escModule: string }
  | { kind: "latest"; module: string; escModule: string }
  | { kind: "file"; file: ModFile; module: string; escModule: string; version: string; escVersion: string; canonical: boolean }
  | { kind: "sumdb"; rest: string };

/** A request about a module (not the checksum database). */
export type ModuleRequest = Exclude<ModRequest, { kind: "sumdb" }>;

/**
 * Parses the part of a proxy URL after the mount point ("/mod/"), already
 * taken from a URL pathname. Throws PathError (answered 400, or 404 when the
 * shape is unknown) for anything that is not a valid request.
 */
export function parseModRequest(rawRest: string): ModRequest {
  let rest: string;
  try {
    rest = decodeURIComponent(rawRest);
  } catch {
    throw new PathError("bad percent-encoding");
  }
  if (rest.includes("\0")) throw new PathError("NUL in path");
  if (rest.includes("\\")) throw new PathError("backslash in path");
  if (rest.startsWith("/")) throw new PathError("absolute path");
  if (rest.startsWith("sumdb/")) return { kind: "sumdb", rest: rest.slice("sumdb/".length) };
  if (rest.endsWith("/@latest")) {
    const escModule = rest.slice(0, -"/@latest".length);
    return { kind: "latest", module: unescapePath(escModule), escModule };
  }
  const at = rest.lastIndexOf("/@v/");
  if (at < 0) throw new PathError("not a module proxy path");
  const escModule = rest.slice(0, at);
  const module = unescapePath(escModule);
  const name = rest.slice(at + "/@v/".length);
  if (name === "list") return { kind: "list", module, escModule };
  const m = /^(.+)\.(info|mod|zip)$/.exec(name);
  if (!m) throw new PathError("unknown file in @v/");
  const escVersion = m[1]!;
  const version = unescapeVersion(escVersion);
  const file = m[2] as ModFile;
  const canonical = isCanonicalVersion(version);
  // .mod and .zip exist only for exact versions; .info also answers queries.
  if (file !== "info" && !canonical) throw new PathError(`version ${JSON.stringify(version)} is not canonical`);
  return { kind: "file", file, module, escModule, version, escVersion, canonical };
}

/** URL-layout path of a module file. */
export function modFileRel(escModule: string, escVersion: string, ext: ModFile): string {
  return `${escModule}/@v/${escVersion}.${ext}`;
}

export function listRel(escModule: string): string {
  return `${escModule}/@v/list`;
}

export function latestRel(escModule: string): string {
  return `${escModule}/@latest`;
}

/** Bytes url.PathEscape leaves as they are: RFC 3986 unreserved, plus $ & + : = @. */
const PATH_SAFE = /^[A-Za-z0-9\-_.~$&+:=@]$/;

/**
 * A URL-layout path as the go command puts it in a proxy URL: every element
 * escaped by Go's url.PathEscape, "/" kept (pathEscape in
 * cmd/go/internal/modfetch/proxy.go). An upstream decodes it back to
 * exactly `rel`, so "#frag" or "%41" in a version stays in the version.
 */
export function urlPathOf(rel: string): string {
  let out = "";
  for (const b of new TextEncoder().encode(rel)) {
    const c = String.fromCharCode(b);
    out += c === "/" || PATH_SAFE.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}
