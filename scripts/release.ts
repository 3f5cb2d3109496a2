#!/usr/bin/env bun
// Release builds: cross-compiles gostash for every supported platform with
// the version baked in, packs each binary into an archive named by version
// and target, and writes SHA256SUMS next to them.
//
//   bun scripts/release.ts                      -> dist/release/ (all targets)
//   bun scripts/release.ts --version=1.2.3      (default: GOSTASH_VERSION or package.json+commit)
//   bun scripts/release.ts --targets=linux-x64,darwin-arm64
//   bun scripts/release.ts --pack-only          re-pack dist/stage/* (after re-signing on macOS)
//   bun scripts/release.ts --jobs=2             concurrent compiles (default 1)
//   bun scripts/release.ts --pack-only --require-valid-signatures
//                                               (release workflow, after codesign on macOS)
//
// Output, e.g. for 1.2.3:
//   dist/release/gostash-1.2.3-linux-x64.tar.gz       (one file: gostash, mode 0755)
//   dist/release/gostash-1.2.3-linux-x64-musl.tar.gz
//   dist/release/gostash-1.2.3-windows-x64.zip        (one file: gostash.exe)
//   dist/release/SHA256SUMS                           (sha256sum format)
//   dist/stage/<target>/gostash[.exe]                 (the raw binaries; not published)
//
// Cross-compiling needs nothing but Bun: it fetches each target's runtime
// from the npm registry (@oven/bun-<os>-<arch>) once and caches it.
// The archives are written by this script (ustar + gzip, zip + deflate),
// byte-for-byte reproducible for the same binaries and version: fixed
// mtime (SOURCE_DATE_EPOCH or the commit time), owner 0/0, no host paths.
import { parseArgs } from "node:util";
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { deflateRawSync, gzipSync } from "node:zlib";
import { buildBinary, buildVersion } from "./build.ts";
import { runScript, ScriptError } from "./script-error.ts";

const root = resolve(import.meta.dir, "..");

export interface Target {
  /** Name used in archive names and by install.sh: linux-x64, linux-arm64-musl, ... */
  name: string;
  /** Bun compile target. */
  bun: string;
  os: "linux" | "darwin" | "windows";
  arch: "x64" | "arm64";
  libc?: "glibc" | "musl";
}

export const TARGETS: readonly Target[] = [
  { name: "linux-x64", bun: "bun-linux-x64", os: "linux", arch: "x64", libc: "glibc" },
  { name: "linux-arm64", bun: "bun-linux-arm64", os: "linux", arch: "arm64", libc: "glibc" },
  { name: "linux-x64-musl", bun: "bun-linux-x64-musl", os: "linux", arch: "x64", libc: "musl" },
  { name: "linux-arm64-musl", bun: "bun-linux-arm64-musl", os: "linux", arch: "arm64", libc: "musl" },
  { name: "darwin-x64", bun: "bun-darwin-x64", os: "darwin", arch: "x64" },
  { name: "darwin-arm64", bun: "bun-darwin-arm64", os: "darwin", arch: "arm64" },
  { name: "windows-x64", bun: "bun-windows-x64", os: "windows", arch: "x64" },
];

export function binaryName(t: Target): string {
  return t.os === "windows" ? "gostash.exe" : "gostash";
}

/** The version as it appears in file names: anything outside [A-Za-z0-9._-] becomes "-" (1.2.3+abc -> 1.2.3-abc). */
export function fileVersion(version: string): string {
  return version.replace(/^v(?=\d)/, "").replace(/[^A-Za-z0-9._-]/g, "-");
}

export function archiveName(version: string, t: Target): string {
  return `gostash-${fileVersion(version)}-${t.name}.${t.os === "windows" ? "zip" : "tar.gz"}`;
}

export interface Artifact {
  target: Target;
  /** Archive file name inside outDir. */
  file: string;
  sha256: string;
  archiveSize: number;
  binary: string;
  binarySize: number;
  /** macOS only: is the embedded code signature valid for these bytes? */
  signature?: "valid" | "invalid" | "none";
}

export interface ReleaseOptions {
  version: string;
  outDir?: string;
  stageDir?: string;
  /** Target names; default all. */
  targets?: string[];
  /** Skip compiling; pack what is in stageDir (e.g. after re-signing the macOS binaries). */
  packOnly?: boolean;
  /** Concurrent compiles (default 1: the build machines are shared). */
  jobs?: number;
  /** gzip/deflate level (default 9). */
  level?: number;
  /** Timestamp of the archive members (default: SOURCE_DATE_EPOCH, else the commit time). */
  mtime?: number;
  /** Fail instead of warning when a macOS binary's code signature is not valid (after re-signing). */
  requireValidSignatures?: boolean;
  log?: (line: string) => void;
}

export interface Release {
  version: string;
  outDir: string;
  stageDir: string;
  /** Timestamp given to the archive members. */
  mtime: number;
  artifacts: Artifact[];
}

export function selectTargets(names?: string[]): Target[] {
  if (!names?.length) return [...TARGETS];
  return names.map((n) => {
    const t = TARGETS.find((t) => t.name === n);
    if (!t) throw new ScriptError(`release: unknown target ${n}; known: ${TARGETS.map((t) => t.name).join(", ")}`);
    return t;
  });
}

export async function release(opts: ReleaseOptions): Promise<Release> {
  const log = opts.log ?? ((l: string) => console.error(l));
  const outDir = resolve(opts.outDir ?? join(root, "dist", "release"));
  const stageDir = resolve(opts.stageDir ?? join(root, "dist", "stage"));
  const targets = selectTargets(opts.targets);
  const mtime = opts.mtime ?? sourceDateEpoch();
  const level = opts.level ?? 9;

  if (!opts.packOnly) {
    const jobs = Math.max(1, opts.jobs ?? 1);
    const queue = [...targets];
    const worker = async () => {
      for (let t = queue.shift(); t; t = queue.shift()) {
        const dir = join(stageDir, t.name);
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir, { recursive: true });
        const t0 = performance.now();
        await buildBinary({ target: t.bun, outfile: join(dir, binaryName(t)), version: opts.version });
        log(`release: compiled ${t.name} in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(jobs, targets.length) }, worker));
  }

  mkdirSync(outDir, { recursive: true });
  // Old archives of this or any other version would end up in SHA256SUMS.
  for (const f of readdirSync(outDir)) {
    if (/^gostash-.*\.(tar\.gz|zip)$/.test(f) || f === "SHA256SUMS") rmSync(join(outDir, f), { force: true });
  }
  const artifacts: Artifact[] = [];
  for (const t of targets) {
    const binary = join(stageDir, t.name, binaryName(t));
    if (!existsSync(binary)) throw new ScriptError(`release: ${binary} is missing (compile it first, without --pack-only)`);
    chmodSync(binary, 0o755);
    const data = new Uint8Array(await Bun.file(binary).arrayBuffer());
    const t0 = performance.now();
    const archive =
      t.os === "windows"
        ? zipOne(binaryName(t), data, mtime, level)
        : gzipSync(tarOne(binaryName(t), data, mtime), { level });
    const file = archiveName(opts.version, t);
    await Bun.write(join(outDir, file), archive);
    const sha256 = new Bun.CryptoHasher("sha256").update(archive).digest("hex");
    let signature: Artifact["signature"];
    if (t.os === "darwin") {
      const sig = checkMachoSignature(data);
      signature = !sig ? "none" : sig.valid ? "valid" : "invalid";
      if (signature !== "valid" && opts.requireValidSignatures) {
        throw new ScriptError(`release: ${t.name}: code signature is ${signature} (re-sign it: codesign --remove-signature, then codesign -s -)`);
      }
      if (signature !== "valid") {
        log(
          `release: warning: ${t.name}: code signature is ${signature}; macOS will kill it. Re-sign on a Mac before publishing: ` +
            `codesign --remove-signature gostash && codesign -s - gostash (then --pack-only)`,
        );
      }
    }
    artifacts.push({ target: t, file, sha256, archiveSize: archive.length, binary, binarySize: data.length, ...(signature ? { signature } : {}) });
    log(
      `release: ${file}  ${mb(archive.length)} (binary ${mb(data.length)}) packed in ${((performance.now() - t0) / 1000).toFixed(1)}s`,
    );
  }
  const sums = artifacts.map((a) => `${a.sha256}  ${a.file}\n`).join("");
  await Bun.write(join(outDir, "SHA256SUMS"), sums);
  log(`release: wrote ${join(outDir, "SHA256SUMS")} (${artifacts.length} archives, version ${opts.version})`);
  return { version: opts.version, outDir, stageDir, mtime, artifacts };
}

function mb(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

/** Archive timestamps: SOURCE_DATE_EPOCH, else the commit time, else now. */
export function sourceDateEpoch(): number {
  const env = process.env.SOURCE_DATE_EPOCH;
  if (env && /^\d+$/.test(env)) return Number(env);
  const p = Bun.spawnSync(["git", "log", "-1", "--format=%ct"], { cwd: root, stderr: "ignore" });
  const t = p.exitCode === 0 ? Number(p.stdout.toString().trim()) : NaN;
  return Number.isFinite(t) && t > 0 ? t : Math.floor(Date.now() / 1000);
}

// ---------------------------------------------------------------------------
// macOS code signatures. Bun signs darwin-arm64 output ad hoc; its darwin-x64
// output keeps the runtime's original signature, which no longer matches the
// bytes (macOS kills such a binary). The release workflow re-signs both on a
// macOS runner; this check says which ones need it.
export interface MachoSignature {
  /** Where the signature blob starts (LC_CODE_SIGNATURE dataoff). */
  dataOffset: number;
  /** How far the CodeDirectory's page hashes reach. */
  codeLimit: number;
  pageSize: number;
  codeSlots: number;
  /** Page hashes that do not match the bytes. */
  badPages: number;
  /** Every page up to the signature is covered and matches: what the kernel checks. */
  valid: boolean;
  adhoc: boolean;
}

/**
 * Recomputes the code-page hashes of a thin 64-bit Mach-O's embedded
 * signature (SHA-256 CodeDirectory), the way the kernel and codesign -v do.
 * Returns undefined when there is no LC_CODE_SIGNATURE.
 */
export function checkMachoSignature(file: Uint8Array): MachoSignature | undefined {
  const le = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (le.getUint32(0, true) !== 0xfeedfacf) throw new Error("not a thin 64-bit Mach-O");
  const ncmds = le.getUint32(16, true);
  let off = 32;
  let dataOffset = -1;
  let dataSize = 0;
  for (let i = 0; i < ncmds; i++) {
    const cmd = le.getUint32(off, true);
    if (cmd === 0x1d) {
      dataOffset = le.getUint32(off + 8, true);
      dataSize = le.getUint32(off + 12, true);
    }
    off += le.getUint32(off + 4, true);
  }
  if (dataOffset < 0) return undefined;
  const be = new DataView(file.buffer, file.byteOffset + dataOffset, dataSize);
  if (be.getUint32(0) !== 0xfade0cc0) throw new Error("code signature: not a SuperBlob");
  const count = be.getUint32(8);
  // The CodeDirectory (slot 0) and alternates (0x1000...): codesign writes a
  // SHA-1 one plus a SHA-256 alternate for binaries that target old macOS.
  const cds: number[] = [];
  for (let i = 0; i < count; i++) {
    const type = be.getUint32(12 + i * 8);
    const blob = be.getUint32(16 + i * 8);
    if ((type === 0 || (type >= 0x1000 && type < 0x1005)) && be.getUint32(blob) === 0xfade0c02) cds.push(blob);
  }
  if (!cds.length) throw new Error("code signature: no CodeDirectory");
  let result: MachoSignature | undefined;
  for (const cd of cds) {
    const flags = be.getUint32(cd + 12);
    const hashOffset = be.getUint32(cd + 16);
    const codeSlots = be.getUint32(cd + 28);
    const codeLimit = be.getUint32(cd + 32);
    const hashSize = be.getUint8(cd + 36);
    const hashType = be.getUint8(cd + 37);
    const pageSize = 1 << be.getUint8(cd + 39);
    const algo = hashType === 1 ? "sha1" : hashType === 2 || hashType === 3 ? "sha256" : undefined;
    if (!algo) throw new Error(`code signature: unknown hash type ${hashType}`);
    let badPages = 0;
    for (let i = 0; i < codeSlots; i++) {
      const start = i * pageSize;
      const end = Math.min(start + pageSize, codeLimit);
      const want = new Uint8Array(file.buffer, file.byteOffset + dataOffset + cd + hashOffset + i * hashSize, hashSize);
      const got = new Bun.CryptoHasher(algo).update(file.subarray(start, end)).digest().subarray(0, hashSize);
      if (!got.equals(want)) badPages++;
    }
    const covered = codeLimit === dataOffset && codeSlots === Math.ceil(codeLimit / pageSize);
    const r = { dataOffset, codeLimit, pageSize, codeSlots, badPages, valid: covered && badPages === 0, adhoc: (flags & 0x2) !== 0 };
    // Report the worst CodeDirectory: the kernel may check any of them.
    if (!result || (result.valid && !r.valid)) result = r;
  }
  return result;
}

// ---------------------------------------------------------------------------
// Archive writers. One regular file each; small enough to own, and it keeps
// the release independent of the host's tar/zip flavour (GNU vs BSD).

/** A POSIX ustar archive holding one executable file at the top level. */
export function tarOne(name: string, data: Uint8Array, mtime: number): Uint8Array {
  const header = new Uint8Array(512);
  const enc = new TextEncoder();
  const put = (off: number, len: number, s: string) => header.set(enc.encode(s).subarray(0, len), off);
  const oct = (off: number, len: number, n: number) => put(off, len, n.toString(8).padStart(len - 1, "0") + "\0");
  if (name.length > 100) throw new Error("tar: name too long");
  if (data.length > 0o77777777777) throw new Error("tar: file too large for ustar");
  put(0, 100, name);
  oct(100, 8, 0o755); // mode
  oct(108, 8, 0); // uid
  oct(116, 8, 0); // gid
  oct(124, 12, data.length);
  oct(136, 12, mtime);
  put(148, 8, "        "); // checksum placeholder: spaces
  put(156, 1, "0"); // regular file
  put(257, 8, "ustar\u000000"); // magic "ustar\0" + version "00"
  put(265, 32, "root");
  put(297, 32, "root");
  let sum = 0;
  for (const b of header) sum += b;
  put(148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  const padded = Math.ceil(data.length / 512) * 512;
  const out = new Uint8Array(512 + padded + 1024); // + two zero blocks
  out.set(header, 0);
  out.set(data, 512);
  return out;
}

/** A zip archive holding one file, deflated, with Unix mode 0755 recorded. */
export function zipOne(name: string, data: Uint8Array, mtime: number, level = 9): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const comp = deflateRawSync(data, { level });
  const crc = Bun.hash.crc32(data) >>> 0;
  const d = new Date(mtime * 1000);
  const dosTime = (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2);
  const dosDate = ((Math.max(1980, d.getUTCFullYear()) - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate();
  if (comp.length >= 0xffffffff || data.length >= 0xffffffff) throw new Error("zip: file too large (no zip64)");

  const local = new DataView(new ArrayBuffer(30));
  local.setUint32(0, 0x04034b50, true);
  local.setUint16(4, 20, true); // version needed
  local.setUint16(6, 0x0800, true); // flags: UTF-8 names
  local.setUint16(8, 8, true); // deflate
  local.setUint16(10, dosTime, true);
  local.setUint16(12, dosDate, true);
  local.setUint32(14, crc, true);
  local.setUint32(18, comp.length, true);
  local.setUint32(22, data.length, true);
  local.setUint16(26, nameBytes.length, true);
  local.setUint16(28, 0, true);

  const central = new DataView(new ArrayBuffer(46));
  central.setUint32(0, 0x02014b50, true);
  central.setUint16(4, (3 << 8) | 20, true); // made by: Unix, 2.0 (so the mode below counts)
  central.setUint16(6, 20, true);
  central.setUint16(8, 0x0800, true);
  central.setUint16(10, 8, true);
  central.setUint16(12, dosTime, true);
  central.setUint16(14, dosDate, true);
  central.setUint32(16, crc, true);
  central.setUint32(20, comp.length, true);
  central.setUint32(24, data.length, true);
  central.setUint16(28, nameBytes.length, true);
  central.setUint32(38, ((0o100755 << 16) | 0) >>> 0, true); // external attrs: regular file 0755
  central.setUint32(42, 0, true); // local header offset

  const centralOffset = 30 + nameBytes.length + comp.length;
  const centralSize = 46 + nameBytes.length;
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, 1, true);
  end.setUint16(10, 1, true);
  end.setUint32(12, centralSize, true);
  end.setUint32(16, centralOffset, true);

  const out = new Uint8Array(centralOffset + centralSize + 22);
  let o = 0;
  for (const part of [new Uint8Array(local.buffer), nameBytes, comp, new Uint8Array(central.buffer), nameBytes, new Uint8Array(end.buffer)]) {
    out.set(part, o);
    o += part.length;
  }
  return out;
}

if (import.meta.main) await runScript("release", async () => {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      version: { type: "string" },
      out: { type: "string" },
      stage: { type: "string" },
      targets: { type: "string" },
      "pack-only": { type: "boolean" },
      jobs: { type: "string" },
      level: { type: "string" },
      "require-valid-signatures": { type: "boolean" },
    },
  });
  const version = values.version?.replace(/^v(?=\d)/, "") ?? (await buildVersion());
  const t0 = performance.now();
  const r = await release({
    version,
    outDir: values.out,
    stageDir: values.stage,
    targets: values.targets?.split(",").map((s) => s.trim()).filter(Boolean),
    packOnly: values["pack-only"],
    jobs: values.jobs ? Number(values.jobs) : undefined,
    level: values.level ? Number(values.level) : undefined,
    requireValidSignatures: values["require-valid-signatures"],
  });
  console.error(`release: ${r.artifacts.length} archives in ${r.outDir} in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
});
