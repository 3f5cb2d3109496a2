// Adding gostash's reverse-proxy CA to the system's trust store, so that
// every client on the machine (curl, git, Go, ...) accepts the proxy's
// certificates. Opt-in (`gostash revproxy ca --install`, or `serve
// --revproxy-install-ca`): go-cache-plugin appends its CA to
// /etc/ssl/certs/ca-certificates.crt on every start, unasked; gostash only
// when told, and once is enough because its CA persists (ca.ts).
//
// Where, in order of preference:
//   Debian, Ubuntu, Alpine   /usr/local/share/ca-certificates/gostash-revproxy.crt
//                            + update-ca-certificates
//   Fedora, RHEL, Amazon     /etc/pki/ca-trust/source/anchors/gostash-revproxy.crt
//                            + update-ca-trust
//   other Linux              appended to /etc/ssl/certs/ca-certificates.crt
//                            (unless it is there already)
//   macOS                    security add-trusted-cert (System keychain)
//   Windows                  certutil -addstore ROOT
// All need root (Administrator). Installing twice changes nothing.

import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";

export interface TrustResult {
  /** Where the CA went. */
  where: string;
  /** False when it was there already. */
  changed: boolean;
}

export class TrustError extends Error {
  override name = "TrustError";
}

const FILE_NAME = "gostash-revproxy.crt";

function run(cmd: string[]): void {
  const p = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) {
    throw new TrustError(`revproxy: ${cmd.join(" ")} failed (exit ${p.exitCode}): ${p.stderr.toString().trim() || p.stdout.toString().trim()}`);
  }
}

/** Writes the anchor file and runs the distribution's update tool, unless the file holds this CA already. */
function anchorDir(dir: string, update: string, pem: string): TrustResult {
  const path = `${dir}/${FILE_NAME}`;
  let same = false;
  try {
    same = readFileSync(path, "utf8") === pem;
  } catch {}
  if (!same) {
    writeFileSync(path, pem, { mode: 0o644 });
    run([update]);
  }
  return { where: path, changed: !same };
}

/** Installs the CA certificate (PEM) into the system trust store; throws TrustError naming what failed. */
export function installCA(pem: string, certPath: string): TrustResult {
  try {
    if (process.platform === "darwin") {
      run(["security", "add-trusted-cert", "-d", "-r", "trustRoot", "-k", "/Library/Keychains/System.keychain", certPath]);
      return { where: "the System keychain", changed: true };
    }
    if (process.platform === "win32") {
      run(["certutil", "-addstore", "-f", "ROOT", certPath]);
      return { where: "the ROOT certificate store", changed: true };
    }
    if (existsSync("/usr/local/share/ca-certificates") && Bun.which("update-ca-certificates")) {
      return anchorDir("/usr/local/share/ca-certificates", "update-ca-certificates", pem);
    }
    if (existsSync("/etc/pki/ca-trust/source/anchors") && Bun.which("update-ca-trust")) {
      return anchorDir("/etc/pki/ca-trust/source/anchors", "update-ca-trust", pem);
    }
    const bundle = "/etc/ssl/certs/ca-certificates.crt";
    if (existsSync(bundle)) {
      if (readFileSync(bundle, "utf8").includes(pem.trim())) return { where: bundle, changed: false };
      appendFileSync(bundle, `\n${pem}`);
      return { where: bundle, changed: true };
    }
  } catch (err) {
    if (err instanceof TrustError) throw err;
    throw new TrustError(`revproxy: installing the CA: ${(err as Error).message} (root is needed)`, { cause: err });
  }
  throw new TrustError("revproxy: no system trust store found to install the CA into; give clients the certificate instead (gostash revproxy ca)");
}
