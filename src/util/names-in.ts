// The sweeps that tidy gostash's own directories (the overflow directory,
// pack temp files and head copies, read-only scratch stores, the reverse
// proxy's entries) all start the same way: list a directory that may not
// exist, or may have gone since; either way there is nothing to do there.

import { readdirSync } from "node:fs";

/** The names in dir, or none when it cannot be read (missing, removed meanwhile, not a directory). */
export function namesIn(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
