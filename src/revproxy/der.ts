// A minimal ASN.1 DER writer and reader: just what X.509 certificates need
// (x509.ts). Every value is a Uint8Array holding one complete TLV
// (tag, length, value); constructors nest them.
//
// Why our own instead of a library: Node's crypto (in Bun) makes the keys
// and the signatures but no certificates, and the well-kept JavaScript
// option, @peculiar/x509, pulls in eleven packages (a dependency-injection
// container among them) for the ~150 lines of encoding a CA and a server
// certificate need. The binary is downloaded by every CI job; these lines
// are tested against `openssl x509` and Go's crypto/x509
// (test/revproxy/x509.test.ts).

/** One DER value: tag, length and contents. */
export type Der = Uint8Array;

const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  oid: 0x06,
  utf8String: 0x0c,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

function lengthBytes(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

/** A value with any tag: the building block of the others. */
export function tlv(tag: number, content: Uint8Array): Der {
  const len = lengthBytes(content.length);
  const out = new Uint8Array(1 + len.length + content.length);
  out[0] = tag;
  out.set(len, 1);
  out.set(content, 1 + len.length);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export const sequence = (...items: Der[]): Der => tlv(TAG.sequence, concat(items));
export const set = (...items: Der[]): Der => tlv(TAG.set, concat(items));
export const octetString = (bytes: Uint8Array): Der => tlv(TAG.octetString, bytes);
export const utf8String = (s: string): Der => tlv(TAG.utf8String, new TextEncoder().encode(s));
export const boolean = (v: boolean): Der => tlv(TAG.boolean, Uint8Array.of(v ? 0xff : 0));

/** A non-negative INTEGER from its big-endian bytes (or a small number). */
export function integer(v: Uint8Array | number): Der {
  let bytes = typeof v === "number" ? bigEndian(v) : v;
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  bytes = bytes.subarray(start);
  // A set high bit would make it negative: DER adds a leading zero.
  return tlv(TAG.integer, bytes[0]! & 0x80 ? concat([Uint8Array.of(0), bytes]) : bytes);
}

function bigEndian(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`der: integer ${n} out of range`);
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return Uint8Array.from(out.length ? out : [0]);
}

/** An OBJECT IDENTIFIER from its dotted form ("1.2.840.10045.4.3.2"). */
export function oid(dotted: string): Der {
  const arcs = dotted.split(".").map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) throw new Error(`der: bad OID ${dotted}`);
  const out = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const base128: number[] = [];
    for (let v = arc; ; v = Math.floor(v / 128)) {
      base128.unshift((v & 0x7f) | (base128.length ? 0x80 : 0));
      if (v < 128) break;
    }
    out.push(...base128);
  }
  return tlv(TAG.oid, Uint8Array.from(out));
}

/**
 * A BIT STRING of whole bytes. `namedBits` is for flag lists such as
 * KeyUsage, where DER drops trailing zero bits and says how many of the
 * last byte's bits are unused.
 */
export function bitString(bytes: Uint8Array, namedBits = false): Der {
  let unused = 0;
  if (namedBits && bytes.length) {
    const last = bytes[bytes.length - 1]!;
    while (unused < 8 && !(last & (1 << unused))) unused++;
    if (unused === 8) throw new Error("der: named bit string ends in a zero byte");
  }
  return tlv(TAG.bitString, concat([Uint8Array.of(unused), bytes]));
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, to the second, in UTC. */
export function time(d: Date): Der {
  const iso = d.toISOString(); // 2026-12-05T01:02:03.456Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, ""); // 20261205010203
  const year = d.getUTCFullYear();
  if (year < 1950 || year > 9999) throw new Error(`der: year ${year} cannot be encoded`);
  const text = year < 2050 ? `${digits.slice(2)}Z` : `${digits}Z`;
  return tlv(year < 2050 ? TAG.utcTime : TAG.generalizedTime, new TextEncoder().encode(text));
}

/** `[n] EXPLICIT`: a constructed context-specific wrapper around one value. */
export const explicit = (n: number, inner: Der): Der => tlv(0xa0 | n, inner);

/** `[n] IMPLICIT` of a primitive value: its contents under a context-specific tag. */
export const implicitPrimitive = (n: number, contents: Uint8Array): Der => tlv(0x80 | n, contents);

/** `[n] IMPLICIT` of a constructed value (a SEQUENCE's contents under a new tag). */
export const implicitConstructed = (n: number, ...items: Der[]): Der => tlv(0xa0 | n, concat(items));

export interface Element {
  tag: number;
  /** The whole TLV. */
  raw: Uint8Array;
  /** The contents. */
  value: Uint8Array;
}

/** Reads the TLV at `at` (definite lengths only, as DER has). */
export function readElement(bytes: Uint8Array, at = 0): Element {
  const tag = bytes[at];
  let lenByte = bytes[at + 1];
  if (tag === undefined || lenByte === undefined) throw new Error("der: truncated");
  let len = lenByte;
  let head = 2;
  if (lenByte & 0x80) {
    const n = lenByte & 0x7f;
    if (n === 0 || n > 4) throw new Error("der: unsupported length");
    len = 0;
    for (let i = 0; i < n; i++) {
      lenByte = bytes[at + 2 + i];
      if (lenByte === undefined) throw new Error("der: truncated");
      len = len * 256 + lenByte;
    }
    head += n;
  }
  if (at + head + len > bytes.length) throw new Error("der: truncated");
  return { tag, raw: bytes.subarray(at, at + head + len), value: bytes.subarray(at + head, at + head + len) };
}

/** The elements inside a constructed value's contents, in order. */
export function children(value: Uint8Array): Element[] {
  const out: Element[] = [];
  for (let at = 0; at < value.length; ) {
    const e = readElement(value, at);
    out.push(e);
    at += e.raw.length;
  }
  return out;
}
