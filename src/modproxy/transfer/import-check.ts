// How `mod import` decides that a module's .info, .mod or .zip may go into
// the store (import.ts):
//
//   .info   JSON whose Version is the version
//   .mod    validated, then its go.sum hash (".../go.mod h1:") checked
//   .zip    validated from its central directory, then its go.sum hash checked
//
// A hash is checked against the --go-sum line when there is one, else
// against the checksum database (sumdb/verify.ts), else the file is
// imported "unverified" when nothing can check it: no database, a private
// path, or with --allow-unverified a database that does not know it or
// cannot be asked. Failures are ValidationErrors (the file is rejected).

import { hashGoMod, hashZip } from "../module/dirhash.ts";
import type { PrefixPatterns } from "../module/globs.ts";
import type { GoSums } from "../module/gosum.ts";
import type { ModuleRequest } from "../module/layout.ts";
import { validateInfo, validateMod, validateZip } from "../module/validate.ts";
import { ValidationError } from "../module/validation-error.ts";
import type { SumdbAnswer, SumdbChecker } from "../sumdb/verify.ts";

type ModuleFile = ModuleRequest & { kind: "file" };

/** What the checks need of the import under way. */
export interface CheckContext {
  o: { goSum?: GoSums; sumdb?: SumdbChecker; noSumdbReason?: string; noSumdb?: PrefixPatterns; allowUnverified?: boolean };
  st: { sumdbVerified: number };
  lookups: Lookups | null;
  unverified(why: string): void;
}

/** The go.sum key of a .zip ("module version") or .mod ("module version/go.mod"). */
export function goSumKey(r: ModuleFile): string {
  return r.file === "zip" ? `${r.module} ${r.version}` : `${r.module} ${r.version}/go.mod`;
}

/** Database lookups of one import, each module@version asked once. */
export class Lookups {
  private readonly answers = new Map<string, Promise<SumdbAnswer>>();

  constructor(readonly checker: SumdbChecker) {}

  get(module: string, version: string): Promise<SumdbAnswer> {
    const k = `${module}@${version}`;
    let a = this.answers.get(k);
    if (!a) this.answers.set(k, (a = this.checker.lookup(module, version)));
    return a;
  }
}

/** Checks hash `h` of r against the checksum database's record. */
async function checkWithDatabase(c: CheckContext, lookups: Lookups, r: ModuleFile, h: string): Promise<void> {
  const db = lookups.checker.name;
  const key = goSumKey(r);
  const a = await lookups.get(r.module, r.version);
  switch (a.kind) {
    case "found": {
      const sums = a.sums.get(key);
      if (!sums) throw new ValidationError(`checksum database ${db}: its record for ${r.module}@${r.version} has no line for ${key}`);
      if (!sums.has(h)) throw new ValidationError(`checksum mismatch: ${key}: file has ${h}, checksum database ${db} has ${[...sums].join(", ")}`);
      c.st.sumdbVerified++;
      return;
    }
    case "invalid":
      throw new ValidationError(`checksum database ${db} answer for ${r.module}@${r.version} does not verify: ${a.message}`);
    case "notfound":
    case "unreachable": {
      const why = a.kind === "notfound" ? `not in checksum database ${db}` : `checksum database ${db} could not be asked`;
      if (!c.o.allowUnverified) throw new ValidationError(`${why} (${a.message}); --allow-unverified imports it anyway`);
      c.unverified(why);
      return;
    }
  }
}

/** Validates a module file and checks its hash; throws ValidationError when it must not be imported. */
export async function checkModuleFile(c: CheckContext, r: ModuleFile, abs: string, data: Uint8Array): Promise<void> {
  if (r.file === "info") {
    validateInfo(data, r.version);
    return;
  }
  let h: string;
  if (r.file === "mod") {
    validateMod(data, r.module);
    h = hashGoMod(data);
  } else {
    await validateZip(abs, r.module, r.version);
    h = await hashZip(data);
  }
  const key = goSumKey(r);
  const want = c.o.goSum?.get(key);
  if (want) {
    if (!want.has(h)) throw new ValidationError(`checksum mismatch: ${key}: file has ${h}, go.sum has ${[...want].join(", ")}`);
    return;
  }
  if (!c.lookups) return c.unverified(c.o.noSumdbReason ?? "no go.sum line");
  if (c.o.noSumdb?.matches(r.module)) return c.unverified("private path, not looked up");
  return checkWithDatabase(c, c.lookups, r, h);
}
