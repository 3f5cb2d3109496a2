// `gostash mod import SRC`: loads a $GOMODCACHE/cache/download tree (or
// $GOMODCACHE itself, or a `gostash mod export` tree or .tar.gz) into the
// module proxy's store, which has the same layout.
//
//   <module>/@v/<version>.zip    validated (module/validate.ts), re-hashed (dirhash h1:),
//                                checked against its --go-sum line, else against
//                                the checksum database (sumdb/verify.ts; import-check.ts)
//   <module>/@v/<version>.mod    validated, re-hashed, checked likewise (".../go.mod h1:")
//   <module>/@v/<version>.info   JSON whose Version is the version
//   sumdb/<name>/lookup|tile/... copied (signed by the database; the go command
//                                verifies them), and first, so that the
//                                database checks below can use them
//                                (plus the narrower partial tiles their trees need, sumdb/tiles.ts)
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

import { statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { PrefixPatterns } from "../module/globs.ts";
import type { GoSums } from "../module/gosum.ts";
import { parseModRequest, type ModuleRequest } from "../module/layout.ts";
import { MAX_ZIP } from "../module/validate.ts";
import { ValidationError } from "../module/validation-error.ts";
import type { Mirror } from "../storage/mirror.ts";
import type { ModStore } from "../storage/store.ts";
import { isSumdbFile } from "../sumdb/databases.ts";
import { completeTiles, dirTileFiles, storedTreeSizes } from "../sumdb/tiles.ts";
import type { SumdbChecker } from "../sumdb/verify.ts";
import { type CheckContext, checkModuleFile, goSumKey, Lookups } from "./import-check.ts";
import { downloadRoot, isJunk, walkFiles } from "./tree.ts";

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
  goSum?: GoSums;
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

type Outcome = "imported" | "skipped" | "rejected";

/** A module file worth importing: a canonical version's .info, .mod or .zip. */
function moduleFile(rel: string): (ModuleRequest & { kind: "file" }) | null {
  try {
    const r = parseModRequest(rel);
    return r.kind === "file" && r.canonical ? r : null;
  } catch {
    return null;
  }
}

class Importer implements CheckContext {
  readonly st: ImportStats = { files: 0, imported: 0, importedBytes: 0, sumdbVerified: 0, unverified: 0, unverifiedWhy: {}, skipped: 0, rejected: [], seconds: 0 };
  /** Databases whose files were imported: their partial tiles are completed at the end. */
  readonly sumdbNames = new Set<string>();
  readonly lookups: Lookups | null;

  constructor(
    readonly o: ImportOptions,
    readonly root: string,
  ) {
    this.lookups = o.sumdb ? new Lookups(o.sumdb) : null;
  }

  done(rel: string, outcome: Outcome, reason?: string): void {
    if (outcome === "skipped") this.st.skipped++;
    else if (outcome === "rejected") this.st.rejected.push({ rel, reason: reason ?? "rejected" });
    this.o.onFile?.(this.st, rel, outcome, reason);
  }

  unverified(why: string): void {
    this.st.unverified++;
    this.st.unverifiedWhy[why] = (this.st.unverifiedWhy[why] ?? 0) + 1;
  }

  /** Once the sumdb/ files are in: every lookup the module files will need, started now, run by the checker's bound. */
  startLookups(rels: string[]): void {
    if (!this.lookups) return;
    for (const rel of rels) {
      const r = moduleFile(rel);
      if (!r || r.file === "info") continue;
      if (this.o.goSum?.has(goSumKey(r)) || this.o.noSumdb?.matches(r.module) || this.o.store.statSync(rel)) continue;
      this.lookups.get(r.module, r.version);
    }
  }

  /** The check of a file before it is stored, or null when it is not imported at all. */
  checkFor(rel: string, abs: string): ((data: Uint8Array) => Promise<void>) | null {
    if (rel.startsWith("sumdb/")) return isSumdbFile(rel) ? async () => {} : null;
    const r = moduleFile(rel);
    return r ? (data) => checkModuleFile(this, r, abs, data) : null;
  }

  async store(rel: string, data: Uint8Array): Promise<void> {
    const tmp = this.o.store.tempFor(rel);
    try {
      await Bun.write(tmp, data);
      await this.o.store.commit(tmp, rel);
    } catch (err) {
      await this.o.store.discard(tmp);
      throw err;
    }
  }

  async importOne(rel: string): Promise<void> {
    this.st.files++;
    const base = rel.slice(rel.lastIndexOf("/") + 1);
    const abs = join(this.root, rel);
    const check = isJunk(base) || rel === "MANIFEST" ? null : this.checkFor(rel, abs);
    if (!check || this.o.store.statSync(rel)) return this.done(rel, "skipped");
    try {
      const size = statSync(abs).size;
      if (size > MAX_ZIP) throw new ValidationError(`${size} bytes, more than ${MAX_ZIP}`);
      const data = new Uint8Array(await readFile(abs));
      await check(data);
      await this.store(rel, data);
      this.st.imported++;
      this.st.importedBytes += data.length;
      this.o.mirror?.put(rel, this.o.store.path(rel));
      if (rel.startsWith("sumdb/")) this.sumdbNames.add(rel.split("/")[1]!);
      this.done(rel, "imported");
    } catch (err) {
      if (err instanceof ValidationError) this.done(rel, "rejected", err.message);
      else if ((err as Error).name === "PathError") this.done(rel, "skipped");
      else throw err;
    }
  }

  /** The narrower partial tiles a file:// client of the store may ask for (sumdb/tiles.ts). */
  async completeTiles(): Promise<void> {
    for (const name of this.sumdbNames) {
      const dbDir = this.o.store.path(`sumdb/${name}`);
      const files = dirTileFiles(dbDir, (rel) => this.o.mirror?.put(`sumdb/${name}/${rel}`, join(dbDir, rel)));
      await completeTiles(files, await storedTreeSizes(files, (rel) => walkFiles(join(dbDir, rel))));
    }
  }
}

export async function importTree(o: ImportOptions): Promise<ImportStats> {
  const t0 = performance.now();
  const imp = new Importer(o, downloadRoot(o.src));
  // sumdb/ first (a stable sort keeps name order otherwise): the database checks may be answered from them.
  const rels = [...walkFiles(imp.root)].sort((a, b) => Number(!a.startsWith("sumdb/")) - Number(!b.startsWith("sumdb/")));
  let started = false;
  for (const rel of rels) {
    if (!started && !rel.startsWith("sumdb/")) {
      started = true;
      imp.startLookups(rels);
    }
    await imp.importOne(rel);
  }
  await imp.completeTiles();
  imp.st.seconds = (performance.now() - t0) / 1000;
  return imp.st;
}
