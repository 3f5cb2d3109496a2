// go.sum lines, as the go command writes them and checksum databases
// answer them:
//
//   <module> <version> h1:<base64>           the module zip's hash (dirhash.ts)
//   <module> <version>/go.mod h1:<base64>    its go.mod's hash
//
// Read by `mod import` (--go-sum, transfer/import.ts) and from the records
// of database lookups (sumdb/verify.ts). Lines of other shapes, and hashes
// other than h1:, are skipped.

/** "module version" and "module version/go.mod" -> the h1: hashes given for it. */
export type GoSums = Map<string, Set<string>>;

export function parseGoSum(text: string, into: GoSums = new Map()): GoSums {
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
