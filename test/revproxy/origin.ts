// A local origin for the reverse-proxy tests and bench: plain HTTP and
// HTTPS (with its own self-signed certificate, made by openssl, not by
// gostash's code), counting the requests it gets per path.
//
//   /immutable/NAME     Cache-Control: public, max-age=31536000, immutable
//   /bare-immutable/NAME  Cache-Control: immutable (not said to be public)
//   /revalidate/NAME    must-revalidate, max-age over 60 days (kept on disk)
//   /short/NAME         max-age=300 (kept in memory); the body says how
//                       many times it was served, so a refetch shows
//   /nostore/NAME       no-store (never kept)
//   /private/NAME       private, immutable (never kept by a shared cache)
//   /big/MIB/NAME       MIB MiB of deterministic bytes, immutable, streamed
//   /slow/MS/NAME       immutable, answered after MS milliseconds
//   /status/CODE        that status, immutable
//   /host/NAME          immutable; the body names the Host the request carried
//   /size/BYTES/NAME    BYTES bytes, immutable (for benchmarks)
//   /file/MIB/NAME      MIB MiB sent from a file (the fastest origin: for throughput benchmarks)
//   /octets/NAME        immutable, Content-Type: application/octet-stream (a type Bun names files for)
//   /untyped/NAME       immutable, no Content-Type at all
//   /untyped-short/NAME max-age=300 (memory), no Content-Type at all
//   /vary/NAME          immutable, Vary: Accept, answered after 150 ms; the
//                       body names the Accept the request carried
//   /vary-ae/NAME       the same with Vary: Accept-Encoding (naming the
//                       client's X-Client-Encoding: the proxy asks for identity)
//   /vary-star/NAME     immutable, Vary: *
//
// bodyOf() gives the bytes a path serves, so tests compare without storing.

import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Origin {
  /** http://localhost:PORT */
  http: string;
  /** https://localhost:PORT */
  https: string;
  httpPort: number;
  httpsPort: number;
  /** The origin's own certificate (PEM), for clients of an untouched tunnel. */
  certPem: string;
  certFile: string;
  /** Its key, for other test servers that borrow the certificate (localhost, 127.0.0.1). */
  keyPem: string;
  /** Requests seen for a path (both schemes). */
  count(path: string): number;
  total(): number;
  stop(): void;
}

const MIB = 1 << 20;
const IMMUTABLE = "public, max-age=31536000, immutable";

/** The deterministic bytes of /big/MIB/NAME, chunk by chunk (never all in memory). */
function bigChunk(name: string, index: number): Uint8Array {
  const seed = createHash("sha256").update(`${name}/${index}`).digest();
  const out = new Uint8Array(MIB);
  for (let i = 0; i < MIB; i += 32) out.set(seed.subarray(0, Math.min(32, MIB - i)), i);
  out[0] = index & 0xff;
  return out;
}

/** SHA-256 of the body of /big/MIB/NAME. */
export function bigSha256(mib: number, name: string): string {
  const h = createHash("sha256");
  for (let i = 0; i < mib; i++) h.update(bigChunk(name, i));
  return h.digest("hex");
}

/** The body of a small path, as the origin serves it (not /short, whose body counts). */
export function bodyOf(path: string): string {
  return `body of ${path}\n`;
}

/** A body Bun's server sends without adding a Content-Type (a stream). */
function untypedBody(text: string): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode(text));
      c.close();
    },
  });
}

function bigStream(mib: number, name: string): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(c) {
      if (i >= mib) return c.close();
      c.enqueue(bigChunk(name, i++));
    },
  });
}

/** A file of `mib` MiB in `dir`, written once. */
function fileOf(dir: string, mib: number): string {
  const path = join(dir, `file-${mib}`);
  if (!existsSync(path)) {
    const fd = openSync(path, "w");
    for (let i = 0; i < mib; i++) writeSync(fd, bigChunk("file", i));
    closeSync(fd);
  }
  return path;
}

async function answer(path: string, served: number, host: string, dir: string, req: Request): Promise<Response> {
  const parts = path.split("/").filter(Boolean);
  const [kind] = parts;
  switch (kind) {
    case "immutable":
      return new Response(bodyOf(path), { headers: { "cache-control": IMMUTABLE, etag: `"${createHash("sha1").update(path).digest("hex")}"`, "content-type": "text/plain" } });
    case "bare-immutable":
      return new Response(bodyOf(path), { headers: { "cache-control": "immutable" } });
    case "revalidate":
      return new Response(bodyOf(path), { headers: { "cache-control": "must-revalidate, max-age=8640000" } });
    case "short":
      return new Response(`short ${path} served ${served}\n`, { headers: { "cache-control": "max-age=300" } });
    case "nostore":
      return new Response(`nostore ${path} served ${served}\n`, { headers: { "cache-control": "no-store" } });
    case "private":
      return new Response(bodyOf(path), { headers: { "cache-control": "private, immutable" } });
    case "big": {
      const mib = Number(parts[1]);
      return new Response(bigStream(mib, parts[2] ?? ""), { headers: { "cache-control": IMMUTABLE, "content-length": String(mib * MIB), "content-type": "application/octet-stream" } });
    }
    case "slow":
      await Bun.sleep(Number(parts[1]));
      return new Response(bodyOf(path), { headers: { "cache-control": IMMUTABLE } });
    case "host":
      return new Response(`${path} on ${host}\n`, { headers: { "cache-control": IMMUTABLE } });
    case "file":
      return new Response(Bun.file(fileOf(dir, Number(parts[1]))), { headers: { "cache-control": IMMUTABLE, "content-type": "application/octet-stream" } });
    case "size":
      return new Response(new Uint8Array(Number(parts[1])).fill(0x61), { headers: { "cache-control": IMMUTABLE, "content-type": "application/octet-stream" } });
    case "octets":
      return new Response(bodyOf(path), { headers: { "cache-control": IMMUTABLE, "content-type": "application/octet-stream" } });
    case "untyped":
      return new Response(untypedBody(bodyOf(path)), { headers: { "cache-control": IMMUTABLE } });
    case "untyped-short":
      return new Response(untypedBody(bodyOf(path)), { headers: { "cache-control": "max-age=300" } });
    case "vary":
      await Bun.sleep(150);
      return new Response(`${path} for ${req.headers.get("accept")}\n`, { headers: { "cache-control": IMMUTABLE, "content-type": "text/plain", vary: "Accept" } });
    case "vary-ae":
      return new Response(`${path} for ${req.headers.get("x-client-encoding")}\n`, { headers: { "cache-control": IMMUTABLE, "content-type": "text/plain", vary: "Accept-Encoding" } });
    case "vary-star":
      return new Response(`${path} served ${served}\n`, { headers: { "cache-control": IMMUTABLE, "content-type": "text/plain", vary: "*" } });
    case "status":
      return new Response(`status ${parts[1]}\n`, { status: Number(parts[1]), headers: { "cache-control": IMMUTABLE } });
    default:
      return new Response("not found\n", { status: 404 });
  }
}

/** A certificate for localhost and 127.0.0.1, self-signed by openssl. */
function makeCertificate(dir: string): { cert: string; key: string; certFile: string } {
  const certFile = join(dir, "origin.pem");
  const keyFile = join(dir, "origin-key.pem");
  const p = Bun.spawnSync(
    ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", "/O=gostash test origin/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
    { stdout: "pipe", stderr: "pipe" },
  );
  if (p.exitCode !== 0) throw new Error(`openssl req failed: ${p.stderr.toString()}`);
  return { cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8"), certFile };
}

/** Starts the origin; ports 0 pick free ones (httpsPort 443 needs root). */
export function startOrigin(o: { httpPort?: number; httpsPort?: number; hostname?: string } = {}): Origin {
  const dir = mkdtempSync(join(tmpdir(), "gostash-origin-"));
  const { cert, key, certFile } = makeCertificate(dir);
  const counts = new Map<string, number>();
  const fetch = (req: Request) => {
    const path = new URL(req.url).pathname;
    const served = (counts.get(path) ?? 0) + 1;
    counts.set(path, served);
    return answer(path, served, req.headers.get("host") ?? "", dir, req);
  };
  const hostname = o.hostname ?? "127.0.0.1";
  const plain = Bun.serve({ hostname, port: o.httpPort ?? 0, fetch, idleTimeout: 0 });
  const tls = Bun.serve({ hostname, port: o.httpsPort ?? 0, fetch, tls: { cert, key }, idleTimeout: 0 });
  return {
    http: `http://localhost:${plain.port}`,
    https: tls.port === 443 ? "https://localhost" : `https://localhost:${tls.port}`,
    httpPort: plain.port!,
    httpsPort: tls.port!,
    certPem: cert,
    certFile,
    keyPem: key,
    count: (path) => counts.get(path) ?? 0,
    total: () => [...counts.values()].reduce((a, b) => a + b, 0),
    stop() {
      plain.stop(true);
      tls.stop(true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
