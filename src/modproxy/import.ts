// `gostash mod import SRC`: loads a $GOMODCACHE/cache/download tree (or
// $GOMODCACHE itself, or a `gostash mod export` tree or .tar.gz) into the
// module proxy's store, which has the same layout.
//
//   <module>/@v/<version>.zip    validated (validate.ts), re-hashed (dirhash h1:),
//                                checked against its --go-sum line, else against
//                                the checksum database (sumdb-verify.ts)
//   <module>/@v/<version>.mod    validated, re-hashed, checked likewise (".../go.mod h1:")
//   <module>/@v/<version>.info   JSON whose Version is the version
//   sumdb/<name>/lookup|tile/... copied (signed by the database; the go command
//                                verifies them), and first, so that the
//                                database checks below can use them
//                                (plus the narrower partial tiles their trees need, tiles.ts)
//   list, @latest                skipped (refetched, or computed offline)
//   *.lock *.tmp* *.partial *.ziphash, MANIFEST, anything else: skipped
//
// A file whose hash disagrees with go.sum or the database, or that fails
// validation, is rejected and reported; files already in the store are
// skipped. A .zip/.mod with no go.sum line is imported "unverified" only
// when nothing can check it: no database (--offline, --sumdb off), a
// private path (never sent to the database), or, with --allow-unverified,
// a database that does not know it or cannot be reached (otherwise those
// are rejected). An answer that fails its signature or proof is always
// rejected. Database lookups start before the files are read and run
// concurrently (bounded by the checker). Stored files are also queued to
// the S3 mirror when one is given.

import { existsSync, readdirSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { hashGoMod, hashZip } from "./dirhash.ts";
import type { PrefixPatterns } from "./globs.ts";
import type { Mirror } from "./mirror.ts";
import { parseModRequest } from "./paths.ts";
import type { ModStore } from "./store.ts";
import type { SumdbAnswer, SumdbChecker } from "./sumdb-verify.ts";
import { completeTiles, dirTileFiles, storedTreeSizes } from "./tiles.ts";
import { MAX_ZIP, ValidationError, validateInfo, validateMod, validateZip } from "./validate.ts";

export interface ImportStats {
  files: number;
  imported: number;
  importedBytes: number;
  /** Imported .zip/.mod files whose hash was proven by the checksum database. */
  sumdbVerified: number;
  /** Imported .zip/.mod files nothing checked (no go.sum line and no database answer). */
  unverified: number;
  /** Why, per reason ("private path", "not in the checksum database", ...). */
  unverifiedWhy: Record<string, number>;
  skipped: number;
  rejected: { rel: string; reason: string }[];
  seconds: number;
}

export interface ImportOptions {
  /** The tree to import (already extracted). */
  src: string;
  store: ModStore;
  /** go.sum lines: "module version" and "module version/go.mod" -> set of h1: hashes. */
  goSum?: Map<string, Set<string>>;
  mirror?: Mirror;
  /** Checks .zip/.mod files without a go.sum line against a checksum database; none: they are imported unverified. */
  sumdb?: SumdbChecker;
  /** Why there is no database, for the report (e.g. "--offline"). */
  noSumdbReason?: string;
  /** Module paths never looked up in the database (GONOSUMDB, GOPRIVATE, --private): imported unverified. */
  noSumdb?: PrefixPatterns;
  /** Import files the database does not know, or cannot be asked about, unverified instead of rejecting them. */
  allowUnverified?: boolean;
  /** Called after every file (for progress). */
  onFile?: (stats: ImportStats, rel: string, outcome: "imported" | "skipped" | "rejected", reason?: string) => void;
}

export function parseGoSum(text: string, into = new Map<string, Set<string>>()): Map<string, Set<string>> {
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 3 || !f[2]!.startsWith("h1:")) continue;
    const key = `${f[0]} ${f[1]}`;
    let s = into.get(key);
    if (!s) into.set(key, (s = new Set()));
    s.add(f[2]!);
  }
  return into;
}

/** The directory holding the download-cache layout inside src ($GOMODCACHE or .../cache/download or an export). */
export function downloadRoot(src: string): string {
  const inner = join(src, "cache", "download");
  return existsSync(inner) && statSync(inner).isDirectory() ? inner : src;
}

/** Files under dir, as slash-separated paths relative to it, in name order. */
export function* walkFiles(dir: string, rel = ""): Generator<string> {
  let ents;
  try {
    ents = readdirSync(join(dir, rel), { withFileTypes: true });
  } catch {
    return;
  }
  ents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of ents) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) yield* walkFiles(dir, r);
    else if (e.isFile()) yield r;
  }
}

export function isJunk(name: string): boolean {
  return name.endsWith(".lock") || name.includes(".tmp") || name.endsWith(".partial") || name.endsWith(".ziphash");
}

const SUMDB_FILE = /^sumdb\/[a-z0-9.:-]+\/(supported|latest|lookup\/[^\0\\]+@[^\0\\/]+|tile\/[0-9]{1,2}\/(data|[0-9]{1,2})(\/x[0-9]{3})*\/[0-9]{3}(\.p\/[0-9]{1,3})?)$/;

export async function importTree(o: ImportOptions): Promise<ImportStats> {
  const t0 = performance.now();
  const root = downloadRoot(o.src);
  const st: ImportStats = {
    files: 0,
    imported: 0,
    importedBytes: 0,
    sumdbVerified: 0,
    unverified: 0,
    unverifiedWhy: {},
    skipped: 0,
    rejected: [],
    seconds: 0,
  };
  const done = (rel: string, outcome: "imported" | "skipped" | "rejected", reason?: string) => {
    if (outcome === "skipped") st.skipped++;
    else if (outcome === "rejected") st.rejected.push({ rel, reason: reason ?? "rejected" });
    o.onFile?.(st, rel, outcome, reason);
  };
  const unverified = (why: string) => {
    st.unverified++;
    st.unverifiedWhy[why] = (st.unverifiedWhy[why] ?? 0) + 1;
  };
  // sumdb/ first (a stable sort keeps name order otherwise): the database checks may be answered from them.
  const sumdbNames = new Set<string>();
  const rels = [...walkFiles(root)].sort((a, b) => Number(!a.startsWith("sumdb/")) - Number(!b.startsWith("sumdb/")));
  const lookups = new Map<string, Promise<SumdbAnswer>>();
  const lookup = (module: string, version: string) => {
    const k = `${module}@${version}`;
    let a = lookups.get(k);
    if (!a) lookups.set(k, (a = o.sumdb!.lookup(module, version)));
    return a;
  };
  /** Once the sumdb/ files are in: every lookup the module files will need, started now, run by the checker's bound. */
  const startLookups = () => {
    if (!o.sumdb) return;
    for (const rel of rels) {
      let r;
      try {
        r = parseModRequest(rel);
      } catch {
        continue;
      }
      if (r.kind !== "file" || !r.canonical || r.file === "info") continue;
      const line = r.file === "zip" ? `${r.module} ${r.version}` : `${r.module} ${r.version}/go.mod`;
      if (o.goSum?.has(line) || o.noSumdb?.matches(r.module) || o.store.statSync(rel)) continue;
      lookup(r.module, r.version);
    }
  };
  let started = false;
  for (const rel of rels) {
    if (!started && !rel.startsWith("sumdb/")) {
      started = true;
      startLookups();
    }
    st.files++;
    const base = rel.slice(rel.lastIndexOf("/") + 1);
    if (isJunk(base) || rel === "MANIFEST") {
      done(rel, "skipped");
      continue;
    }
    const abs = join(root, rel);
    let check: ((data: Uint8Array) => Promise<boolean>) | null = null;
    if (rel.startsWith("sumdb/")) {
      if (!SUMDB_FILE.test(rel) || rel.split("/").some((e) => e === ".." || e === ".")) {
        done(rel, "skipped");
        continue;
      }
      check = async () => true;
    } else {
      let r;
      try {
        r = parseModRequest(rel);
      } catch {
        done(rel, "skipped");
        continue;
      }
      if (r.kind !== "file" || !r.canonical) {
        done(rel, "skipped");
        continue;
      }
      const { module, version, file } = r;
      check = async (data) => {
        if (file === "info") {
          validateInfo(data, version);
          return true;
        }
        const key = file === "zip" ? `${module} ${version}` : `${module} ${version}/go.mod`;
        let h: string;
        if (file === "mod") {
          validateMod(data, module);
          h = hashGoMod(data);
        } else {
          await validateZip(abs, module, version);
          h = hashZip(data);
        }
        const want = o.goSum?.get(key);
        if (want) {
          if (!want.has(h)) throw new ValidationError(`checksum mismatch: ${key}: file has ${h}, go.sum has ${[...want].join(", ")}`);
          return true;
        }
        if (!o.sumdb) {
          unverified(o.noSumdbReason ?? "no go.sum line");
          return true;
        }
        if (o.noSumdb?.matches(module)) {
          unverified("private path, not looked up");
          return true;
        }
        const db = o.sumdb.name;
        const a = await lookup(module, version);
        switch (a.kind) {
          case "found": {
            const sums = a.sums.get(key);
            if (!sums) throw new ValidationError(`checksum database ${db}: its record for ${module}@${version} has no line for ${key}`);
            if (!sums.has(h)) throw new ValidationError(`checksum mismatch: ${key}: file has ${h}, checksum database ${db} has ${[...sums].join(", ")}`);
            st.sumdbVerified++;
            return true;
          }
          case "invalid":
            throw new ValidationError(`checksum database ${db} answer for ${module}@${version} does not verify: ${a.message}`);
          case "notfound":
          case "unreachable": {
            const why = a.kind === "notfound" ? `not in checksum database ${db}` : `checksum database ${db} could not be asked`;
            if (!o.allowUnverified) throw new ValidationError(`${why} (${a.message}); --allow-unverified imports it anyway`);
            unverified(why);
            return true;
          }
        }
      };
    }
    try {
      if (o.store.statSync(rel)) {
        done(rel, "skipped");
        continue;
      }
      const size = statSync(abs).size;
      if (size > MAX_ZIP) throw new ValidationError(`${size} bytes, more than ${MAX_ZIP}`);
      const data = new Uint8Array(await readFile(abs));
      await check(data);
      const tmp = o.store.tempFor(rel);
      try {
        await Bun.write(tmp, data);
        await o.store.commit(tmp, rel);
      } catch (err) {
        await o.store.discard(tmp);
        throw err;
      }
      st.imported++;
      st.importedBytes += data.length;
      o.mirror?.put(rel, o.store.path(rel));
      if (rel.startsWith("sumdb/")) sumdbNames.add(rel.split("/")[1]!);
      done(rel, "imported");
    } catch (err) {
      if (err instanceof ValidationError) done(rel, "rejected", err.message);
      else if ((err as Error).name === "PathError") done(rel, "skipped");
      else throw err;
    }
  }
  // The narrower partial tiles a file:// client of the store may ask for (tiles.ts).
  for (const name of sumdbNames) {
    const dbDir = o.store.path(`sumdb/${name}`);
    const files = dirTileFiles(dbDir, (rel) => o.mirror?.put(`sumdb/${name}/${rel}`, join(dbDir, rel)));
    await completeTiles(files, await storedTreeSizes(files, (rel) => walkFiles(join(dbDir, rel))));
  }
  st.seconds = (performance.now() - t0) / 1000;
  return st;
}
