// The checksum databases the proxy serves (--sumdb) and the shapes of
// their paths, under /mod/sumdb/<name>/ and <store>/sumdb/<name>/:
//
//   supported                       200 for configured names (empty file in the store)
//   latest                          the signed tree head
//   lookup/<module>@<version>       a record and the tree that holds it
//   tile/<H>/<L>/<NNN>[.p/<W>]      hash tiles (data tiles: tile/<H>/data/...)
//
// Shared by the proxy (serve/sumdb.ts), offline mode (serve/sumdb-offline.ts)
// and `mod import` (transfer/import.ts), so that all three accept the same files.

import type { ModStore } from "../storage/store.ts";

export interface SumdbConfig {
  name: string;
  /** Explicit base URL of the database, or null to discover it. */
  url: string | null;
}

const NAME = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?$/;

/**
 * Parses --sumdb: comma-separated names, each optionally "name=URL".
 * "true"/"on" (go-cache-plugin's boolean) means the default; "off"/"false"
 * turns the sumdb proxy off.
 */
export function parseSumdbs(v: string | undefined): SumdbConfig[] {
  const raw = (v ?? "").trim();
  if (raw === "" || /^(1|true|yes|on)$/i.test(raw)) return [{ name: "sum.golang.org", url: null }];
  if (/^(0|false|no|off|none)$/i.test(raw)) return [];
  return raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const eq = s.indexOf("=");
      const name = eq < 0 ? s : s.slice(0, eq);
      const url = eq < 0 ? null : s.slice(eq + 1).replace(/\/+$/, "");
      if (!NAME.test(name)) throw new Error(`config: --sumdb: invalid database name ${JSON.stringify(name)}`);
      if (url !== null && !/^https?:\/\//.test(url)) throw new Error(`config: --sumdb: ${name}: URL must be http(s), got ${JSON.stringify(url)}`);
      return { name, url };
    });
}

/** A tile path; NNN may be split in x<NNN>/ elements, ".p/<W>" marks a partial tile. */
export const TILE_PATH = /^tile\/[0-9]{1,2}\/(data|[0-9]{1,2})(\/x[0-9]{3})*\/[0-9]{3}(\.p\/[0-9]{1,3})?$/;
/** A lookup path: escaped module@version, no NUL or backslash (the proxy checks the elements too). */
export const LOOKUP_PATH = /^lookup\/[^\0\\]+@[^\0\\/]+$/;
const DB_FILE = /^sumdb\/([a-z0-9.:-]+)\/(.+)$/;

export type SumdbFileKind = "supported" | "latest" | "lookup" | "tile";

/** What a path inside a database directory is, or null when it is none of its files. */
export function sumdbFileKind(path: string): SumdbFileKind | null {
  if (path === "supported" || path === "latest") return path;
  if (TILE_PATH.test(path)) return "tile";
  return LOOKUP_PATH.test(path) ? "lookup" : null;
}

/** Is `rel` ("sumdb/<name>/...") a file of a database directory, with no "." or ".." element? */
export function isSumdbFile(rel: string): boolean {
  const m = DB_FILE.exec(rel);
  return m !== null && sumdbFileKind(m[2]!) !== null && !rel.split("/").some((e) => e === ".." || e === ".");
}

/** Writes the empty "supported" file of each database: the store then works as GOPROXY=file:// for the sumdb too. */
export function writeSupported(store: ModStore, dbs: SumdbConfig[]): void {
  for (const d of dbs) {
    const rel = `sumdb/${d.name}/supported`;
    if (!store.statSync(rel)) store.writeSync(rel, "");
  }
}
