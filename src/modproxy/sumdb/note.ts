// Signed notes and verifier keys of Go checksum databases
// (golang.org/x/mod/sumdb/note), verified with the platform's Ed25519.
//
// A verifier key is "<name>+<hash>+<base64 key>": hash is 8 hex digits, the
// first 4 bytes (big-endian) of SHA-256("<name>\n" + key); key is one
// algorithm byte (1 = Ed25519) and the 32-byte public key.
//
// A signed note is the text (ending in "\n"), an empty line, then one or
// more signature lines "— <name> <base64(4-byte key hash + signature)>\n".
// The Ed25519 signature is over the text bytes. A note is accepted when a
// signature by our key verifies; other signatures are ignored, and a
// signature claiming our key that does not verify is an error. parseNote
// checks the shape alone, for databases whose key the proxy does not know
// (sumdb/answers.ts).

import { createHash, createPublicKey, verify, type KeyObject } from "node:crypto";

export class NoteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NoteError";
  }
}

export interface Verifier {
  name: string;
  hash: number;
  key: KeyObject;
}

/** Keys the go command knows without being told (cmd/go/internal/modfetch knownGOSUMDB). */
export const KNOWN_KEYS: Record<string, string> = {
  "sum.golang.org": "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
};

function keyHash(name: string, key: Uint8Array): number {
  return createHash("sha256").update(`${name}\n`).update(key).digest().readUInt32BE(0);
}

function validName(name: string): boolean {
  return name !== "" && !/\s/.test(name) && !name.includes("+");
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function b64(s: string): Buffer | null {
  return B64.test(s) ? Buffer.from(s, "base64") : null;
}

export function parseVerifierKey(vkey: string): Verifier {
  const [name = "", hash16 = "", ...rest] = vkey.split("+");
  // The base64 key may itself contain "+".
  const key = b64(rest.join("+"));
  if (!validName(name) || !/^[0-9a-f]{8}$/i.test(hash16) || !key || key.length === 0) {
    throw new NoteError(`malformed verifier key ${JSON.stringify(vkey)} (want name+hash+base64key)`);
  }
  const hash = Number.parseInt(hash16, 16);
  if (keyHash(name, key) !== hash) throw new NoteError(`verifier key ${JSON.stringify(vkey)}: hash does not match the key`);
  if (key[0] !== 1 || key.length !== 33) throw new NoteError(`verifier key ${JSON.stringify(vkey)}: not an Ed25519 key`);
  const pub = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: key.subarray(1).toString("base64url") }, format: "jwk" });
  return { name, hash, key: pub };
}

const SIG_PREFIX = "\u2014 ";

export interface ParsedNote {
  /** The signed text, ending in "\n". */
  text: string;
  textBytes: Uint8Array;
  signatures: { name: string; sig: Buffer }[];
}

/**
 * Splits a signed note into its text and its signature lines, checking the
 * shape only (note.Open's checks before any key is used). Throws NoteError.
 */
export function parseNote(msg: Uint8Array): ParsedNote {
  let all: string;
  try {
    all = new TextDecoder("utf-8", { fatal: true }).decode(msg);
  } catch {
    throw new NoteError("malformed note: not UTF-8");
  }
  // Control characters other than newline are not allowed anywhere.
  if (/[\u0000-\u0009\u000b-\u001f]/.test(all)) throw new NoteError("malformed note: control character");
  const split = all.lastIndexOf("\n\n");
  if (split < 0) throw new NoteError("malformed note: no signatures");
  const text = all.slice(0, split + 1);
  const sigs = all.slice(split + 2);
  if (sigs === "" || !sigs.endsWith("\n")) throw new NoteError("malformed note: bad signature block");
  const lines = sigs.slice(0, -1).split("\n");
  if (lines.length > 100) throw new NoteError("malformed note: too many signatures");
  return { text, textBytes: msg.subarray(0, Buffer.byteLength(text)), signatures: lines.map(parseSignatureLine) };
}

/** "— <name> <base64(4-byte key hash + signature)>". */
function parseSignatureLine(line: string): { name: string; sig: Buffer } {
  if (!line.startsWith(SIG_PREFIX)) throw new NoteError("malformed note: signature line");
  const rest = line.slice(SIG_PREFIX.length);
  const sp = rest.indexOf(" ");
  const name = sp < 0 ? rest : rest.slice(0, sp);
  const sig = sp < 0 ? null : b64(rest.slice(sp + 1));
  if (!sig || sig.length < 5 || !validName(name)) throw new NoteError("malformed note: signature line");
  return { name, sig };
}

/** Verifies a signed note with `v`; returns its text. Throws NoteError. */
export function openNote(msg: Uint8Array, v: Verifier): string {
  const { text, textBytes, signatures } = parseNote(msg);
  let verified = false;
  for (const { name, sig } of signatures) {
    if (name !== v.name || sig.readUInt32BE(0) !== v.hash) continue;
    if (!verify(null, textBytes, v.key, sig.subarray(4))) throw new NoteError(`invalid signature for key ${v.name}+${v.hash.toString(16).padStart(8, "0")}`);
    verified = true;
  }
  if (!verified) throw new NoteError(`note has no signature by ${v.name}+${v.hash.toString(16).padStart(8, "0")}`);
  return text;
}
