// The DER writer, the certificates and the CA files, checked by the tools
// that will consume them: `openssl x509`/`openssl verify`, and a Go TLS
// client (crypto/x509 is the strictest common verifier) talking to a real
// TLS server that presents a gostash-made certificate.
import { afterAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir, run } from "../helpers/env.ts";
import * as der from "../../src/revproxy/der.ts";
import { CA_CERT_FILE, CA_KEY_FILE, loadOrCreateCA } from "../../src/revproxy/ca.ts";
import { certPem, certificateNotAfter, certificateSubject, ipAddressBytes, issueCA, issueServer, keyPem } from "../../src/revproxy/x509.ts";
import { buildGoClient } from "./helpers.ts";

const tmp = tempDir("gostash-x509-");
afterAll(() => tmp.cleanup());

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("DER", () => {
  test("integers: minimal, positive, with a leading zero when the high bit is set", () => {
    expect(hex(der.integer(0))).toBe("020100");
    expect(hex(der.integer(127))).toBe("02017f");
    expect(hex(der.integer(128))).toBe("02020080");
    expect(hex(der.integer(256))).toBe("02020100");
    expect(hex(der.integer(Uint8Array.of(0, 0, 0x12)))).toBe("020112");
    expect(hex(der.integer(Uint8Array.of(0xff, 1)))).toBe("020300ff01");
  });

  test("object identifiers, including arcs over 127", () => {
    expect(hex(der.oid("1.2.840.10045.4.3.2"))).toBe("06082a8648ce3d040302");
    expect(hex(der.oid("2.5.29.17"))).toBe("0603551d11");
  });

  test("long lengths, and the reader reads back what the writer wrote", () => {
    const big = der.octetString(new Uint8Array(300));
    expect(hex(big.subarray(0, 4))).toBe("0482012c");
    const seq = der.sequence(der.integer(5), big, der.utf8String("é"));
    const kids = der.children(der.readElement(seq).value);
    expect(kids.map((k) => k.tag)).toEqual([0x02, 0x04, 0x0c]);
    expect(kids[1]!.value.length).toBe(300);
    expect(() => der.readElement(seq.subarray(0, seq.length - 1))).toThrow("truncated");
  });

  test("times: UTCTime until 2049, GeneralizedTime from 2050", () => {
    expect(new TextDecoder().decode(der.time(new Date("2049-12-31T23:59:59Z")).subarray(2))).toBe("491231235959Z");
    expect(der.time(new Date("2049-12-31T23:59:59Z"))[0]).toBe(0x17);
    expect(new TextDecoder().decode(der.time(new Date("2050-01-01T00:00:00Z")).subarray(2))).toBe("20500101000000Z");
    expect(der.time(new Date("2050-01-01T00:00:00Z"))[0]).toBe(0x18);
  });

  test("named bit strings drop trailing zero bits", () => {
    expect(hex(der.bitString(Uint8Array.of(0x80), true))).toBe("03020780");
    expect(hex(der.bitString(Uint8Array.of(0x86), true))).toBe("03020186");
  });

  test("IP address bytes for SANs", () => {
    expect([...ipAddressBytes("10.1.2.3")!]).toEqual([10, 1, 2, 3]);
    expect(hex(ipAddressBytes("::1")!)).toBe("00000000000000000000000000000001");
    expect(hex(ipAddressBytes("[2001:db8::ff00:42:8329]")!)).toBe("20010db8000000000000ff0000428329");
    expect(hex(ipAddressBytes("::ffff:1.2.3.4")!)).toBe("00000000000000000000ffff01020304");
    expect(ipAddressBytes("example.com")).toBeNull();
  });
});

describe("certificates", () => {
  const ca = issueCA("gostash test CA");
  const leaf = issueServer(ca, ["localhost", "origin.example", "127.0.0.1", "::1"]);
  const caFile = join(tmp.path, "ca.pem");
  const leafFile = join(tmp.path, "leaf.pem");
  writeFileSync(caFile, certPem(ca.der));
  writeFileSync(leafFile, certPem(leaf.der));

  test("openssl reads them and verifies the server certificate for TLS servers", async () => {
    const text = await run(["openssl", "x509", "-in", leafFile, "-noout", "-text"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("DNS:localhost, DNS:origin.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
    expect(text.stdout).toContain("TLS Web Server Authentication");
    expect(text.stdout).toMatch(/CA:FALSE/);
    const caText = await run(["openssl", "x509", "-in", caFile, "-noout", "-text"]);
    expect(caText.stdout).toContain("CA:TRUE, pathlen:0");
    expect(caText.stdout).toContain("Certificate Sign");
    const verify = await run(["openssl", "verify", "-CAfile", caFile, "-purpose", "sslserver", leafFile]);
    expect(verify.stdout.trim()).toBe(`${leafFile}: OK`);
    const host = await run(["openssl", "x509", "-in", leafFile, "-noout", "-checkhost", "origin.example", "-checkip", "::1"]);
    expect(host.stdout).toContain("does match certificate");
    expect(host.stdout).not.toContain("NOT");
    // A different CA does not verify it.
    writeFileSync(join(tmp.path, "other.pem"), certPem(issueCA("other").der));
    expect((await run(["openssl", "verify", "-CAfile", join(tmp.path, "other.pem"), leafFile])).code).not.toBe(0);
  });

  test("node's X509Certificate agrees on issuer, subject, validity and the key", () => {
    const x = new X509Certificate(leaf.der);
    expect(x.verify(new X509Certificate(ca.der).publicKey)).toBe(true);
    expect(x.checkHost("origin.example")).toBe("origin.example");
    expect(x.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(x.checkPrivateKey(leaf.key)).toBe(true);
    expect(x.issuer).toBe(new X509Certificate(ca.der).subject);
    expect(hex(certificateSubject(leaf.der))).not.toBe(hex(certificateSubject(ca.der)));
    expect(Math.abs(certificateNotAfter(leaf.der).getTime() - new Date(x.validTo).getTime())).toBeLessThan(1000);
    expect(new X509Certificate(ca.der).ca).toBe(true);
  });

  test(
    "a Go TLS client trusting only the CA accepts the server certificate, for a name and for an IP",
    async () => {
      const server = Bun.serve({ hostname: "127.0.0.1", port: 0, tls: { cert: certPem(leaf.der), key: keyPem(leaf.key) }, fetch: () => new Response("hello from a gostash certificate\n") });
      try {
        const client = await buildGoClient();
        const res = await run([client, `https://localhost:${server.port}/`, `https://127.0.0.1:${server.port}/`], { env: { SSL_CERT_FILE: caFile, HTTPS_PROXY: "", https_proxy: "" }, timeoutMs: 60_000 });
        expect(res.stderr).toBe("");
        const lines = res.stdout.trim().split("\n").map((l) => JSON.parse(l));
        expect(lines.map((l) => l.status)).toEqual([200, 200]);
        expect(lines[0].issuer).toContain("gostash test CA");
        // And a client trusting something else refuses it.
        const refused = await run([client, `https://localhost:${server.port}/`], { env: { SSL_CERT_FILE: join(tmp.path, "other.pem"), HTTPS_PROXY: "" }, timeoutMs: 60_000 });
        expect(refused.code).toBe(1);
        expect(JSON.parse(refused.stdout).error).toContain("certificate signed by unknown authority");
      } finally {
        server.stop(true);
      }
    },
    180_000,
  );
});

describe("the CA in the cache directory", () => {
  test("made once with its key 0600, then read back; ca.pem is the certificate alone", () => {
    const dir = join(tmp.path, "ca1");
    const a = loadOrCreateCA(dir);
    expect(a.created).toBe(true);
    expect(statSync(join(dir, CA_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, CA_CERT_FILE), "utf8")).toBe(a.pem);
    expect(a.pem).not.toContain("PRIVATE KEY");
    const b = loadOrCreateCA(dir);
    expect(b.created).toBe(false);
    expect(b.pem).toBe(a.pem);
  });

  test("two processes making it at once end up with one CA", async () => {
    const dir = join(tmp.path, "ca-race");
    const script = `import { loadOrCreateCA } from ${JSON.stringify(join(import.meta.dir, "../../src/revproxy/ca.ts"))}; process.stdout.write(loadOrCreateCA(${JSON.stringify(dir)}).pem);`;
    const runs = await Promise.all([1, 2, 3, 4].map(() => run([process.execPath, "-e", script], { timeoutMs: 60_000 })));
    for (const r of runs) expect(r.code).toBe(0);
    expect(new Set(runs.map((r) => r.stdout)).size).toBe(1);
    expect(runs[0]!.stdout).toBe(readFileSync(join(dir, CA_CERT_FILE), "utf8"));
  });

  test("a CA about to expire is replaced, the old one kept aside, with a warning", () => {
    const dir = join(tmp.path, "ca-old");
    const old = loadOrCreateCA(dir);
    const warnings: string[] = [];
    const later = new Date(certificateNotAfter(old.der).getTime() - 10 * 86_400_000);
    const renewed = loadOrCreateCA(dir, later, (m) => warnings.push(m));
    expect(renewed.created).toBe(true);
    expect(renewed.pem).not.toBe(old.pem);
    expect(warnings.join("\n")).toContain("made a new one");
  });

  test("a damaged key file is an error naming the file, not a silent new CA", () => {
    const dir = join(tmp.path, "ca-bad");
    loadOrCreateCA(dir);
    writeFileSync(join(dir, CA_KEY_FILE), "not a key\n");
    expect(() => loadOrCreateCA(dir)).toThrow(/ca-key\.pem is not a usable CA/);
  });
});
