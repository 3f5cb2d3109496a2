// What the checksum-database proxy refuses to store or serve (serve/sumdb.ts),
// checked on every answer of a database (or the bucket) before it is kept.
// The proxy does not know every database's key, so these are shape checks;
// the go command verifies signatures and hashes itself:
//
//   tile/H/L/NNN            hash tile: exactly 2^H hashes of 32 bytes
//   tile/H/L/NNN.p/W        partial hash tile: exactly W hashes
//   tile/H/data/NNN[.p/W]   data tile (records): not empty
//   lookup/<module>@<ver>   a record, then a signed note (note.ts parseNote):
//   latest                  text, a blank line, then "— <name> <sig>" lines
//
// Hash tiles outside what tlog.ts reads (H over 16, W of 0 or 2^H and
// more) are refused too: no client asks for them.

import { ValidationError } from "../module/validation-error.ts";
import { NoteError, parseNote } from "./note.ts";
import { HASH_SIZE, parseTilePath } from "./tlog.ts";

const DATA_TILE = /^tile\/[0-9]{1,2}\/data\//;

function checkTile(path: string, data: Uint8Array): void {
  if (DATA_TILE.test(path)) {
    if (data.length === 0) throw new ValidationError(`data tile ${path} is empty`);
    return;
  }
  const t = parseTilePath(path);
  if (!t) throw new ValidationError(`${path} is not a tile a client reads`);
  if (data.length !== t.w * HASH_SIZE) throw new ValidationError(`hash tile ${path} is ${data.length} bytes, not ${t.w} hashes (${t.w * HASH_SIZE} bytes)`);
}

function checkSignedNote(path: string, data: Uint8Array): void {
  try {
    parseNote(data);
  } catch (err) {
    if (!(err instanceof NoteError)) throw err;
    throw new ValidationError(`${path} is not a signed note: ${err.message}`, { cause: err });
  }
}

/** Checks the answer to `path` ("latest", "lookup/...", "tile/...") of a database. Throws ValidationError. */
export function validateSumdbAnswer(path: string, data: Uint8Array): void {
  if (path.startsWith("tile/")) checkTile(path, data);
  else checkSignedNote(path, data);
}
