// A real S3-compatible server for tests and benchmarks: versitygw (posix
// backend, installed into .tools/bin by scripts/tools/versitygw.sh) on a free
// loopback port, storing into a temporary directory.
//
//   const s3 = await startS3Server();          // bucket already created
//   ... GOCACHEPROG env: { ...s3.env } or flags --bucket/--s3-endpoint-url ...
//   await s3.stop();                          // kills the server, removes the dir
//
// `env` carries the AWS credential variables and gostash's/go-cache-plugin's
// GOCACHE_S3_* variables, so a spawned `gostash` (or go-cache-plugin) finds
// the bucket with no flags. Objects are plain files under `dataDir/<bucket>/`,
// which lets tests inspect or tamper with what was uploaded.
//
// Nothing here mocks S3: the SDK, signatures, metadata and streaming are the
// real thing. The server process is killed on stop() and when the test
// process exits.
import { S3Client, CreateBucketCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { atTestRunEnd, TOOLS } from "./env.ts";

export interface S3Server {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  port: number;
  /** versitygw's process ID (benches read its CPU). */
  pid: number;
  bucket: string;
  accessKey: string;
  secretKey: string;
  region: string;
  /** Root of the posix backend: objects live in `${dataDir}/${bucket}/<key>`. */
  dataDir: string;
  /** AWS_* credentials plus GOCACHE_S3_BUCKET/ENDPOINT_URL/PATH_STYLE/REGION. */
  env: Record<string, string>;
  /** A client for the server (for tests that look inside the bucket). */
  client(): S3Client;
  /** Every key in the bucket (all pages), sorted. */
  listKeys(bucket?: string): Promise<string[]>;
  /** Creates another bucket on the same server. */
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

export interface S3ServerOptions {
  bucket?: string;
  accessKey?: string;
  secretKey?: string;
  /** Defaults to .tools/bin/versitygw. */
  binary?: string;
  /** Log server output to stderr (debugging). */
  verbose?: boolean;
}

const live = new Set<{ kill(sig?: number): void }>();
const killLive = () => {
  for (const p of live) p.kill(9);
};
// A server a test or bench forgot to stop is killed when the process exits
// (benches) or when the test run ends (bun test has no exit event).
process.on("exit", killLive);
atTestRunEnd(killLive);

/** A port nothing listens on right now (the OS's pick, then released). */
export function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

async function waitListening(port: number, proc: { exitCode: number | null }, deadlineMs: number): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    if (proc.exitCode !== null) return false;
    try {
      const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
      await r.arrayBuffer();
      return true; // any HTTP answer (403 for anonymous) means it is up
    } catch {
      await Bun.sleep(50);
    }
  }
  return false;
}

export async function startS3Server(o: S3ServerOptions = {}): Promise<S3Server> {
  const bin = o.binary ?? join(TOOLS, "bin", "versitygw");
  if (!existsSync(bin)) throw new Error(`s3server: ${bin} is missing; run sh scripts/tools/versitygw.sh`);
  const bucket = o.bucket ?? "gostash-test";
  const accessKey = o.accessKey ?? "gostashtestkey";
  const secretKey = o.secretKey ?? "gostashtestsecret0123456789";
  const region = "us-east-1";
  const dataDir = mkdtempSync(join(tmpdir(), "gostash-s3-"));
  const root = join(dataDir, "root");
  const sidecar = join(dataDir, "meta");
  mkdirSync(root);
  mkdirSync(sidecar);

  let proc: ReturnType<typeof Bun.spawn> | null = null;
  let port = 0;
  for (let attempt = 0; attempt < 5 && !proc; attempt++) {
    port = freePort();
    const p = Bun.spawn(
      [bin, "--port", `127.0.0.1:${port}`, "--access", accessKey, "--secret", secretKey, "--region", region, "--quiet", "posix", "--sidecar", sidecar, root],
      { stdin: "ignore", stdout: o.verbose ? "inherit" : "ignore", stderr: o.verbose ? "inherit" : "ignore" },
    );
    live.add(p);
    if (await waitListening(port, p, 15_000)) proc = p;
    else {
      p.kill(9);
      live.delete(p);
      await p.exited;
    }
  }
  if (!proc) {
    rmSync(dataDir, { recursive: true, force: true });
    throw new Error("s3server: versitygw did not start");
  }
  const endpoint = `http://127.0.0.1:${port}`;
  const clients: S3Client[] = [];
  const client = () => {
    const c = new S3Client({
      endpoint,
      region,
      forcePathStyle: true,
      credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
    clients.push(c);
    return c;
  };
  const admin = client();
  const createBucket = async (name: string) => {
    await admin.send(new CreateBucketCommand({ Bucket: name }), { abortSignal: AbortSignal.timeout(10_000) });
  };
  await createBucket(bucket);
  const listKeys = async (name = bucket) => {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await admin.send(new ListObjectsV2Command({ Bucket: name, ContinuationToken: token }));
      for (const o of page.Contents ?? []) keys.push(o.Key!);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  };
  const server = proc;
  return {
    endpoint,
    port,
    pid: server.pid,
    bucket,
    accessKey,
    secretKey,
    region,
    dataDir: root,
    env: {
      AWS_ACCESS_KEY_ID: accessKey,
      AWS_SECRET_ACCESS_KEY: secretKey,
      AWS_REGION: region,
      AWS_EC2_METADATA_DISABLED: "true",
      GOCACHE_S3_BUCKET: bucket,
      GOCACHE_S3_ENDPOINT_URL: endpoint,
      GOCACHE_S3_PATH_STYLE: "true",
      GOCACHE_S3_REGION: region,
    },
    client,
    listKeys,
    createBucket,
    async stop() {
      for (const c of clients) c.destroy();
      server.kill(9);
      await server.exited;
      live.delete(server);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
