// X.509 certificates for the reverse proxy's TLS termination: a CA that
// gostash keeps (ca.ts) and one server certificate it signs at start-up for
// every host of --revproxy. ECDSA P-256 with SHA-256 throughout: small keys,
// fast signatures, accepted by every TLS client that matters (Go, curl with
// OpenSSL or GnuTLS, Node, Java, browsers).
//
// Encoded with our own DER writer (der.ts; why there). What each
// certificate carries, and why:
//   CA      basicConstraints CA:TRUE, pathlen 0 (it signs leaves only),
//           keyUsage keyCertSign + cRLSign + digitalSignature,
//           subjectKeyIdentifier.
//   server  basicConstraints CA:FALSE, keyUsage digitalSignature (ECDSA),
//           extKeyUsage serverAuth, subjectAltName (DNS names and IP
//           addresses: clients match hosts against it, never the CN),
//           authorityKeyIdentifier (chain building), at most 397 days
//           (Apple's platforms refuse longer-lived server certificates).

import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";
import * as der from "./der.ts";

const OID = {
  ecdsaWithSHA256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  subjectAltName: "2.5.29.17",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
} as const;

/** KeyUsage bits, numbered from the most significant bit of the first byte. */
const KEY_USAGE = { digitalSignature: 0x80, keyCertSign: 0x04, cRLSign: 0x02 } as const;

const DAY_MS = 86_400_000;
/** Certificates start an hour in the past: clients with a slow clock still accept them. */
const BACKDATE_MS = 3_600_000;
export const CA_DAYS = 3650;
export const SERVER_DAYS = 397;

export interface Issued {
  /** The certificate, DER. */
  der: Uint8Array;
  key: KeyObject;
}

export function newKey(): KeyObject {
  return generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
}

export function toPem(label: string, bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes).toString("base64").replace(/.{64}/g, "$&\n");
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith("\n") ? "" : "\n"}-----END ${label}-----\n`;
}

export const certPem = (c: Uint8Array): string => toPem("CERTIFICATE", c);
export const keyPem = (k: KeyObject): string => k.export({ type: "pkcs8", format: "pem" }).toString();

function name(commonName: string, organization: string): der.Der {
  return der.sequence(
    der.set(der.sequence(der.oid(OID.organization), der.utf8String(organization))),
    der.set(der.sequence(der.oid(OID.commonName), der.utf8String(commonName))),
  );
}

function extension(id: string, critical: boolean, value: der.Der): der.Der {
  return der.sequence(der.oid(id), ...(critical ? [der.boolean(true)] : []), der.octetString(value));
}

/** SubjectPublicKeyInfo of the key's public half, and its key identifier (RFC 5280 4.2.1.2, method 1). */
function publicKeyInfo(key: KeyObject): { spki: Uint8Array; keyId: Uint8Array } {
  const spki = new Uint8Array(createPublicKey(key).export({ type: "spki", format: "der" }));
  const bits = der.children(der.readElement(spki).value)[1]!;
  const keyId = new Uint8Array(createHash("sha1").update(bits.value.subarray(1)).digest());
  return { spki, keyId };
}

/** A positive 127-bit serial number (RFC 5280: at most 20 bytes, unpredictable). */
function serialNumber(): Uint8Array {
  const s = new Uint8Array(randomBytes(16));
  s[0] = (s[0]! & 0x7f) | 0x01;
  return s;
}

interface TbsFields {
  issuer: der.Der;
  subject: der.Der;
  notBefore: Date;
  notAfter: Date;
  spki: Uint8Array;
  extensions: der.Der[];
}

function signCertificate(f: TbsFields, signer: KeyObject): Uint8Array {
  const alg = der.sequence(der.oid(OID.ecdsaWithSHA256));
  const tbs = der.sequence(
    der.explicit(0, der.integer(2)), // v3
    der.integer(serialNumber()),
    alg,
    f.issuer,
    der.sequence(der.time(f.notBefore), der.time(f.notAfter)),
    f.subject,
    f.spki,
    der.explicit(3, der.sequence(...f.extensions)),
  );
  const signature = new Uint8Array(sign("sha256", tbs, { key: signer, dsaEncoding: "der" }));
  return der.sequence(tbs, alg, der.bitString(signature));
}

/** A self-signed CA certificate and its new key. */
export function issueCA(commonName: string, now = new Date()): Issued {
  const key = newKey();
  const { spki, keyId } = publicKeyInfo(key);
  const subject = name(commonName, "gostash");
  const certDer = signCertificate(
    {
      issuer: subject,
      subject,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + CA_DAYS * DAY_MS),
      spki,
      extensions: [
        extension(OID.basicConstraints, true, der.sequence(der.boolean(true), der.integer(0))),
        extension(OID.keyUsage, true, der.bitString(Uint8Array.of(KEY_USAGE.digitalSignature | KEY_USAGE.keyCertSign | KEY_USAGE.cRLSign), true)),
        extension(OID.subjectKeyIdentifier, false, der.octetString(keyId)),
      ],
    },
    key,
  );
  return { der: certDer, key };
}

/** A server certificate for `hosts` (DNS names or IP addresses), signed by `ca`, with a new key. */
export function issueServer(ca: Issued, hosts: string[], now = new Date()): Issued {
  if (!hosts.length) throw new Error("x509: a server certificate needs at least one host");
  const key = newKey();
  const { spki } = publicKeyInfo(key);
  const caKeyId = publicKeyInfo(ca.key).keyId;
  const notAfter = Math.min(now.getTime() + SERVER_DAYS * DAY_MS, certificateNotAfter(ca.der).getTime());
  const certDer = signCertificate(
    {
      issuer: certificateSubject(ca.der),
      subject: name(hosts[0]!, "gostash reverse proxy"),
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(notAfter),
      spki,
      extensions: [
        extension(OID.basicConstraints, true, der.sequence()),
        extension(OID.keyUsage, true, der.bitString(Uint8Array.of(KEY_USAGE.digitalSignature), true)),
        extension(OID.extKeyUsage, false, der.sequence(der.oid(OID.serverAuth))),
        extension(OID.subjectAltName, false, der.sequence(...hosts.map(altName))),
        extension(OID.authorityKeyIdentifier, false, der.sequence(der.implicitPrimitive(0, caKeyId))),
      ],
    },
    ca.key,
  );
  return { der: certDer, key };
}

/** dNSName [2] for names, iPAddress [7] for literal addresses (clients match IPs only against those). */
function altName(host: string): der.Der {
  const ip = ipAddressBytes(host);
  return ip ? der.implicitPrimitive(7, ip) : der.implicitPrimitive(2, new TextEncoder().encode(host));
}

/** The 4 or 16 bytes of an IP address literal, or null for a name. */
export function ipAddressBytes(host: string): Uint8Array | null {
  const h = host.replace(/^\[|\]$/g, "");
  if (isIPv4(h)) return Uint8Array.from(h.split(".").map(Number));
  if (!isIPv6(h)) return null;
  let text = h;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1]!.split(".").map(Number);
    text = `${text.slice(0, v4.index)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const groups = (s: string | undefined) => (s ? s.split(":") : []);
  const fill = tail === undefined ? [] : new Array<string>(8 - groups(head).length - groups(tail).length).fill("0");
  const all = [...groups(head), ...fill, ...groups(tail)];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

/** The fields of a certificate's TBSCertificate, in order (the version is optional in DER). */
function tbsFields(certDer: Uint8Array): der.Element[] {
  const tbs = der.children(der.readElement(certDer).value)[0]!;
  const fields = der.children(tbs.value);
  return fields[0]?.tag === 0xa0 ? fields.slice(1) : fields;
}

/** The subject Name of a certificate, as DER (a leaf's issuer must be these exact bytes). */
export function certificateSubject(certDer: Uint8Array): Uint8Array {
  return tbsFields(certDer)[4]!.raw;
}

/** When a certificate expires. */
export function certificateNotAfter(certDer: Uint8Array): Date {
  const validity = der.children(tbsFields(certDer)[3]!.value);
  const t = new TextDecoder().decode(validity[1]!.value);
  const full = validity[1]!.tag === 0x17 ? `${Number(t.slice(0, 2)) >= 50 ? "19" : "20"}${t}` : t;
  return new Date(`${full.slice(0, 4)}-${full.slice(4, 6)}-${full.slice(6, 8)}T${full.slice(8, 10)}:${full.slice(10, 12)}:${full.slice(12, 14)}Z`);
}

/** The DER inside the first PEM block with this label, or null. */
export function fromPem(text: string, label: string): Uint8Array | null {
  const m = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`).exec(text);
  return m ? new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ""), "base64")) : null;
}
