// `gostash mod import SRC`: loads a $GOMODCACHE/cache/download tree (or
// $GOMODCACHE itself, or a `gostash mod export` tree or .tar.gz) into the
// module proxy's store, which has the same layout.
//
//   <module>/@v/<version>.zip    validated (validate.ts), re-hashed (dirhash h1:),
//                                checked against --go-sum lines when given
//   <module>/@v/<version>.mod    validated, re-hashed, checked likewise (".../go.mod h1:")
//   <module>/@v/<version>.info   JSON whose Version is the version
//   sumdb/<name>/lookup|tile/... copied (signed by the database; the go command
//                                verifies them)
//   list, @latest                skipped (refetched, or computed offline)
//   *.lock *.tmp* *.partial *.ziphash, MANIFEST, anything else: skipped
//
// A file whose hash disagrees with go.sum, or that fails validation, is
// rejected and reported; files already in the store are skipped. Stored
// files are also queued to the S3 mirror when one is given.

import { existsSync, readdirSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { hashGoMod, hashZip } from "./dirhash.ts";
import type { Mirror } from "./mirror.ts";
import { parseModRequest } from "./paths.ts";
import type { ModStore } from "./store.ts";
import { MAX_ZIP, ValidationError, validateInfo, validateMod, validateZip } from "./validate.ts";

export interface ImportStats {
  files: number;
  imported: number;
  importedBytes: number;
  /** Imported .zip/.mod files with no go.sum line to check against. */
  unverified: number;
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
  const st: ImportStats = { files: 0, imported: 0, importedBytes: 0, unverified: 0, skipped: 0, rejected: [], seconds: 0 };
  const done = (rel: string, outcome: "imported" | "skipped" | "rejected", reason?: string) => {
    if (outcome === "skipped") st.skipped++;
    else if (outcome === "rejected") st.rejected.push({ rel, reason: reason ?? "rejected" });
    o.onFile?.(st, rel, outcome, reason);
  };
  for (const rel of walkFiles(root)) {
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
        if (!want) {
          st.unverified++;
          return true;
        }
        if (!want.has(h)) throw new ValidationError(`checksum mismatch: ${key}: file has ${h}, go.sum has ${[...want].join(", ")}`);
        return true;
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
      done(rel, "imported");
    } catch (err) {
      if (err instanceof ValidationError) done(rel, "rejected", err.message);
      else if ((err as Error).name === "PathError") done(rel, "skipped");
      else throw err;
    }
  }
  st.seconds = (performance.now() - t0) / 1000;
  return st;
}
