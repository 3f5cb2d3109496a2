// Trees in the download-cache layout ($GOMODCACHE/cache/download, a
// `gostash mod export` tree, the proxy's store), as `mod import` reads them
// and `mod export` writes them: walked in name order, with the go command's
// working files left out.

import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

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

/** The go command's lock, temporary and .ziphash files: never imported or exported. */
export function isJunk(name: string): boolean {
  return name.endsWith(".lock") || name.includes(".tmp") || name.endsWith(".partial") || name.endsWith(".ziphash");
}
