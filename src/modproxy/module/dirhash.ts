// The go.sum hashes ("h1:"), as golang.org/x/mod/sumdb/dirhash computes them:
//
//   Hash1(files) = "h1:" + base64(sha256(for each name, sorted:
//                                     hex(sha256(content)) + "  " + name + "\n"))
//
// HashZip applies it to every entry of a module zip (names as stored,
// "<module>@<version>/..."); the go.mod hash ("<module> <version>/go.mod h1:...")
// is Hash1 over a single file named "go.mod". The zip is read by zip.ts.

import { createHash } from "node:crypto";
import { ValidationError } from "./validation-error.ts";
import { bytesReader, readZipDirectory, readZipEntry } from "./zip.ts";

export function hash1(files: { name: string; data: Uint8Array }[]): string {
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const h = createHash("sha256");
  for (const f of sorted) {
    if (f.name.includes("\n")) throw new ValidationError("dirhash: file name with newline");
    h.update(`${createHash("sha256").update(f.data).digest("hex")}  ${f.name}\n`);
  }
  return `h1:${h.digest("base64")}`;
}

/** The go.sum hash of a go.mod file's content. */
export function hashGoMod(data: Uint8Array): string {
  return hash1([{ name: "go.mod", data }]);
}

/** dirhash.HashZip of a module zip's bytes. Throws ValidationError on a malformed zip. */
export async function hashZip(zip: Uint8Array): Promise<string> {
  const read = bytesReader(zip);
  const files: { name: string; data: Uint8Array }[] = [];
  for (const e of await readZipDirectory(read, zip.length)) files.push({ name: e.name, data: await readZipEntry(read, zip.length, e) });
  return hash1(files);
}
