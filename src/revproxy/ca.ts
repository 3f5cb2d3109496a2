// The reverse proxy's certificate authority: made once, kept in the cache
// directory so that clients told to trust it keep trusting it across
// restarts (go-cache-plugin makes a new CA on every start, valid one day).
//
// Layout, in <cache-dir>/revproxy/ (next to the cached responses, which
// live in two-hex-digit subdirectories, see entry-file.ts):
//
//   ca-key.pem   mode 0600: the CA's private key (PKCS#8 PEM) followed by
//                its certificate (PEM). The one authoritative file: written
//                whole to a temp file and linked into place, so two
//                processes creating the CA at once agree on one (the
//                second link fails and that process reads the winner's).
//   ca.pem       mode 0644: the certificate alone, for clients
//                (`gostash revproxy ca` prints it). Rewritten from
//                ca-key.pem whenever it is missing or differs.
//
// A CA that expires within 30 days is replaced (the old file is kept as
// ca-key.pem.<expiry date>), with a warning: clients must trust the new one.
// Server certificates are never stored: serve signs a fresh one for its
// hosts at every start (x509.ts).

import { X509Certificate, createPrivateKey } from "node:crypto";
import { chmodSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { certPem, certificateNotAfter, fromPem, issueCA, keyPem, type Issued } from "./x509.ts";

export const CA_KEY_FILE = "ca-key.pem";
export const CA_CERT_FILE = "ca.pem";
const RENEW_BEFORE_MS = 30 * 86_400_000;

export interface CertificateAuthority extends Issued {
  /** The certificate, PEM (what clients trust). */
  pem: string;
  /** ca.pem: the certificate alone. */
  certPath: string;
  /** True when this call made it (clients must be told to trust it). */
  created: boolean;
}

export class CAError extends Error {
  override name = "CAError";
}

/** Loads the CA in `dir` (<cache-dir>/revproxy), making it first if there is none or it is about to expire. */
export function loadOrCreateCA(dir: string, now = new Date(), warn: (message: string) => void = () => {}): CertificateAuthority {
  mkdirSync(dir, { recursive: true });
  const keyPath = join(dir, CA_KEY_FILE);
  let ca = readCA(keyPath);
  let created = false;
  if (ca && certificateNotAfter(ca.der).getTime() - now.getTime() < RENEW_BEFORE_MS) {
    const aside = `${keyPath}.${certificateNotAfter(ca.der).toISOString().slice(0, 10)}`;
    renameSync(keyPath, aside);
    warn(`revproxy: the CA in ${keyPath} expires on ${certificateNotAfter(ca.der).toISOString()}; made a new one (old kept as ${aside}); clients must trust the new ${join(dir, CA_CERT_FILE)}`);
    ca = null;
  }
  if (!ca) {
    created = createCA(keyPath, now);
    ca = readCA(keyPath);
    if (!ca) throw new CAError(`revproxy: CA: ${keyPath} was just written but cannot be read back`);
  }
  const pem = certPem(ca.der);
  const certPath = join(dir, CA_CERT_FILE);
  writeIfDifferent(certPath, pem);
  return { ...ca, pem, certPath, created };
}

/** The CA in ca-key.pem, or null when there is none; throws CAError when it is there but unusable. */
function readCA(keyPath: string): Issued | null {
  let text: string;
  try {
    text = readFileSync(keyPath, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new CAError(`revproxy: CA: reading ${keyPath}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const certDer = fromPem(text, "CERTIFICATE");
    if (!certDer) throw new Error("no CERTIFICATE block");
    const key = createPrivateKey(text);
    if (!new X509Certificate(certDer).checkPrivateKey(key)) throw new Error("the key does not match the certificate");
    return { der: certDer, key };
  } catch (err) {
    throw new CAError(`revproxy: CA: ${keyPath} is not a usable CA (${(err as Error).message}); move it away to make a new one`, { cause: err });
  }
}

/** Writes a new CA unless another process got there first. True when ours won. */
function createCA(keyPath: string, now: Date): boolean {
  const ca = issueCA(`gostash reverse proxy CA (${hostname()})`, now);
  const tmp = `${keyPath}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, keyPem(ca.key) + certPem(ca.der), { mode: 0o600 });
  try {
    chmodSync(tmp, 0o600); // whatever the umask
    linkSync(tmp, keyPath);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw new CAError(`revproxy: CA: writing ${keyPath}: ${(err as Error).message}`, { cause: err });
  } finally {
    rmSync(tmp, { force: true });
  }
}

function writeIfDifferent(path: string, text: string): void {
  try {
    if (readFileSync(path, "utf8") === text) return;
  } catch {}
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, path);
}
