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
//   dist/release/gostash-1.2.3-linux-x64.tar.xz       (the same, about 28% smaller; install.sh
//                                                      takes it where xz is there)
//   dist/release/gostash-1.2.3-linux-x64-musl.tar.gz  (and .tar.xz)
//   dist/release/gostash-1.2.3-windows-x64.zip        (one file: gostash.exe)
//   dist/release/SHA256SUMS                           (sha256sum format)
//   dist/stage/<target>/gostash[.exe]                 (the raw binaries; not published)
//
// Cross-compiling needs nothing but Bun: it fetches each target's runtime
// from the npm registry (@oven/bun-<os>-<arch>) once and caches it.
// The archives are written by this script (ustar + gzip, ustar + xz with
// the system's xz, zip + deflate: archive.ts), byte-for-byte reproducible
// for the same binaries, version (and xz): fixed mtime (SOURCE_DATE_EPOCH or
// the commit time), owner 0/0, no host paths.
import { parseArgs } from "node:util";
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { tarOne, xzCompress, zipOne } from "./archive.ts";
import { buildBinary, buildVersion } from "./build.ts";

export { tarOne, zipOne };
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

/** The archive every installer can unpack: .tar.gz (.zip for Windows). */
export function archiveName(version: string, t: Target): string {
  return `gostash-${fileVersion(version)}-${t.name}.${t.os === "windows" ? "zip" : "tar.gz"}`;
}

/** The smaller .tar.xz offered beside the .tar.gz; none for Windows (its .zip is what it unpacks). */
export function xzArchiveName(version: string, t: Target): string | null {
  return t.os === "windows" ? null : `gostash-${fileVersion(version)}-${t.name}.tar.xz`;
}

export interface PackedFile {
  /** File name inside outDir. */
  file: string;
  sha256: string;
  size: number;
}

export interface Artifact {
  target: Target;
  /** Archive file name inside outDir (.tar.gz or .zip). */
  file: string;
  sha256: string;
  archiveSize: number;
  /** The .tar.xz beside it (not for Windows). */
  xz?: PackedFile;
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
  /** gzip/deflate level, and xz preset (9 means xz -9e; default 9). */
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
    if (/^gostash-.*\.(tar\.gz|tar\.xz|zip)$/.test(f) || f === "SHA256SUMS") rmSync(join(outDir, f), { force: true });
  }
  const artifacts: Artifact[] = [];
  for (const t of targets) artifacts.push(await pack(t, { ...opts, outDir, stageDir, mtime, level, log }));
  const files = artifacts.flatMap((a) => [{ file: a.file, sha256: a.sha256 }, ...(a.xz ? [a.xz] : [])]);
  await Bun.write(join(outDir, "SHA256SUMS"), files.map((f) => `${f.sha256}  ${f.file}\n`).join(""));
  log(`release: wrote ${join(outDir, "SHA256SUMS")} (${files.length} archives, version ${opts.version})`);
  return { version: opts.version, outDir, stageDir, mtime, artifacts };
}

interface PackOptions {
  version: string;
  outDir: string;
  stageDir: string;
  mtime: number;
  level: number;
  requireValidSignatures?: boolean;
  log: (line: string) => void;
}

/** Writes a file into outDir; its name, sha256 and size. */
async function writeArchive(outDir: string, file: string, bytes: Uint8Array): Promise<PackedFile> {
  await Bun.write(join(outDir, file), bytes);
  return { file, sha256: new Bun.CryptoHasher("sha256").update(bytes).digest("hex"), size: bytes.length };
}

/** One target's staged binary packed as .tar.gz (or .zip) and .tar.xz. */
async function pack(t: Target, o: PackOptions): Promise<Artifact> {
  const binary = join(o.stageDir, t.name, binaryName(t));
  if (!existsSync(binary)) throw new ScriptError(`release: ${binary} is missing (compile it first, without --pack-only)`);
  chmodSync(binary, 0o755);
  const data = new Uint8Array(await Bun.file(binary).arrayBuffer());
  const t0 = performance.now();
  const signature = t.os === "darwin" ? checkSignature(t, data, o) : undefined;
  let main: PackedFile;
  let xz: PackedFile | undefined;
  if (t.os === "windows") main = await writeArchive(o.outDir, archiveName(o.version, t), zipOne(binaryName(t), data, o.mtime, o.level));
  else {
    const tar = tarOne(binaryName(t), data, o.mtime);
    main = await writeArchive(o.outDir, archiveName(o.version, t), gzipSync(tar, { level: o.level }));
    xz = await writeArchive(o.outDir, xzArchiveName(o.version, t)!, await xzCompress(tar, { level: o.level, x86: t.arch === "x64" }));
  }
  o.log(
    `release: ${main.file}  ${mb(main.size)}${xz ? `, .tar.xz ${mb(xz.size)}` : ""} (binary ${mb(data.length)}) packed in ${((performance.now() - t0) / 1000).toFixed(1)}s`,
  );
  return {
    target: t,
    file: main.file,
    sha256: main.sha256,
    archiveSize: main.size,
    ...(xz ? { xz } : {}),
    binary,
    binarySize: data.length,
    ...(signature ? { signature } : {}),
  };
}

/** macOS: is the code signature valid for these bytes? Warns, or (after re-signing) refuses, when not. */
function checkSignature(t: Target, data: Uint8Array, o: PackOptions): Artifact["signature"] {
  const sig = checkMachoSignature(data);
  const signature = !sig ? "none" : sig.valid ? "valid" : "invalid";
  if (signature !== "valid" && o.requireValidSignatures) {
    throw new ScriptError(`release: ${t.name}: code signature is ${signature} (re-sign it: codesign --remove-signature, then codesign -s -)`);
  }
  if (signature !== "valid") {
    o.log(
      `release: warning: ${t.name}: code signature is ${signature}; macOS will kill it. Re-sign on a Mac before publishing: ` +
        `codesign --remove-signature gostash && codesign -s - gostash (then --pack-only)`,
    );
  }
  return signature;
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
  console.error(`release: ${r.artifacts.length} targets packed in ${r.outDir} in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
});
