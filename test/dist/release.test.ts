// The release: every target is cross-compiled, is the right kind of binary
// for its platform, is packed under the right name with the right contents,
// and SHA256SUMS matches. The linux-x64 build runs here.
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync, inflateRawSync } from "node:zlib";
import { archiveName, checkMachoSignature, fileVersion, release, TARGETS, tarOne, xzArchiveName, zipOne, type Release } from "../../scripts/release.ts";
import { run, tempDir } from "../helpers/env.ts";
import { inspectBinary, type BinaryInfo } from "./binfmt.ts";
import { BUILD_TIMEOUT_MS, TEST_VERSION, testRelease } from "./fixture.ts";

let rel: Release;
beforeAll(async () => {
  rel = await testRelease();
}, BUILD_TIMEOUT_MS);

const sha256 = (b: Uint8Array) => new Bun.CryptoHasher("sha256").update(b).digest("hex");

async function head(path: string): Promise<Uint8Array> {
  return new Uint8Array(await Bun.file(path).slice(0, 256 * 1024).arrayBuffer());
}

/** The single member of a one-file ustar archive: name, mode, data. */
function readTar(tar: Uint8Array): { name: string; mode: number; data: Uint8Array; members: number } {
  const dec = new TextDecoder();
  const field = (off: number, len: number) => dec.decode(tar.subarray(off, off + len)).replace(/\0.*$/s, "");
  let members = 0;
  let first: { name: string; mode: number; data: Uint8Array } | undefined;
  for (let off = 0; off + 512 <= tar.length; ) {
    if (tar.subarray(off, off + 512).every((b) => b === 0)) break;
    const size = parseInt(field(off + 124, 12).trim(), 8);
    const entry = { name: field(off, 100), mode: parseInt(field(off + 100, 8).trim(), 8), data: tar.subarray(off + 512, off + 512 + size) };
    first ??= entry;
    members++;
    off += 512 + Math.ceil(size / 512) * 512;
  }
  if (!first) throw new Error("empty tar");
  return { ...first, members };
}

/** The single member of a one-file zip: name, Unix mode, inflated data. */
function readZip(zip: Uint8Array): { name: string; mode: number; data: Uint8Array; entries: number } {
  const dv = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const eocd = zip.length - 22;
  expect(dv.getUint32(eocd, true)).toBe(0x06054b50);
  const entries = dv.getUint16(eocd + 10, true);
  const cd = dv.getUint32(eocd + 16, true);
  expect(dv.getUint32(cd, true)).toBe(0x02014b50);
  const mode = dv.getUint32(cd + 38, true) >>> 16;
  const local = dv.getUint32(cd + 42, true);
  expect(dv.getUint32(local, true)).toBe(0x04034b50);
  const method = dv.getUint16(local + 8, true);
  const crc = dv.getUint32(local + 14, true);
  const csize = dv.getUint32(local + 18, true);
  const nameLen = dv.getUint16(local + 26, true);
  const extraLen = dv.getUint16(local + 28, true);
  const name = new TextDecoder().decode(zip.subarray(local + 30, local + 30 + nameLen));
  const start = local + 30 + nameLen + extraLen;
  const raw = zip.subarray(start, start + csize);
  const data = method === 8 ? new Uint8Array(inflateRawSync(raw)) : raw;
  expect(Bun.hash.crc32(data) >>> 0).toBe(crc);
  return { name, mode, data, entries };
}

const EXPECTED: Record<string, { format: BinaryInfo["format"]; arch: string; interpreter?: RegExp }> = {
  "linux-x64": { format: "elf", arch: "x64", interpreter: /^\/lib64\/ld-linux-x86-64\.so\.2$/ },
  "linux-arm64": { format: "elf", arch: "arm64", interpreter: /^\/lib\/ld-linux-aarch64\.so\.1$/ },
  "linux-x64-musl": { format: "elf", arch: "x64", interpreter: /^\/lib\/ld-musl-x86_64\.so\.1$/ },
  "linux-arm64-musl": { format: "elf", arch: "arm64", interpreter: /^\/lib\/ld-musl-aarch64\.so\.1$/ },
  "darwin-x64": { format: "macho", arch: "x64" },
  "darwin-arm64": { format: "macho", arch: "arm64" },
  "windows-x64": { format: "pe", arch: "x64" },
};

describe("release archives", () => {
  test("names and helpers", () => {
    expect(TARGETS.map((t) => t.name).sort()).toEqual(Object.keys(EXPECTED).sort());
    expect(fileVersion("v1.2.3")).toBe("1.2.3");
    expect(fileVersion("0.1.0+abc123")).toBe("0.1.0-abc123");
    expect(archiveName("1.2.3", TARGETS.find((t) => t.name === "windows-x64")!)).toBe("gostash-1.2.3-windows-x64.zip");
    expect(archiveName("1.2.3", TARGETS.find((t) => t.name === "linux-arm64-musl")!)).toBe("gostash-1.2.3-linux-arm64-musl.tar.gz");
    expect(xzArchiveName("1.2.3", TARGETS.find((t) => t.name === "linux-arm64-musl")!)).toBe("gostash-1.2.3-linux-arm64-musl.tar.xz");
    expect(xzArchiveName("1.2.3", TARGETS.find((t) => t.name === "windows-x64")!)).toBeNull();
  });

  test("one archive per target (and a .tar.xz beside each .tar.gz), named by version and target, and SHA256SUMS lists exactly them", async () => {
    expect(rel.artifacts.map((a) => a.target.name).sort()).toEqual(Object.keys(EXPECTED).sort());
    const sums = readFileSync(join(rel.outDir, "SHA256SUMS"), "utf8");
    const lines = sums.trim().split("\n");
    expect(lines).toHaveLength(2 * TARGETS.length - 1); // Windows: the .zip only
    for (const a of rel.artifacts) {
      expect(a.file).toBe(`gostash-${TEST_VERSION}-${a.target.name}.${a.target.os === "windows" ? "zip" : "tar.gz"}`);
      const bytes = new Uint8Array(readFileSync(join(rel.outDir, a.file)));
      expect(lines).toContain(`${sha256(bytes)}  ${a.file}`);
      expect(a.xz?.file).toBe(a.target.os === "windows" ? undefined : `gostash-${TEST_VERSION}-${a.target.name}.tar.xz`);
      if (a.xz) {
        const xz = new Uint8Array(readFileSync(join(rel.outDir, a.xz.file)));
        expect(lines).toContain(`${sha256(xz)}  ${a.xz.file}`);
        expect(xz.length).toBeLessThan(a.archiveSize);
      }
    }
    // The format sha256sum -c reads.
    const check = await run(["sha256sum", "-c", "SHA256SUMS"], { cwd: rel.outDir, timeoutMs: 60_000 });
    expect(check.stderr).toBe("");
    expect(check.code).toBe(0);
  }, 120_000);

  for (const [name, want] of Object.entries(EXPECTED)) {
    test(`${name}: ${want.format} ${want.arch} executable, packed intact`, async () => {
      const a = rel.artifacts.find((x) => x.target.name === name)!;
      const info = inspectBinary(await head(a.binary));
      expect(info.format).toBe(want.format);
      expect(info.arch).toBe(want.arch);
      expect(info.executable).toBe(true);
      if (want.interpreter) expect(info.interpreter).toMatch(want.interpreter);
      if (info.format === "pe") expect(info.subsystem).toBe(3); // console: GOCACHEPROG talks over stdio
      expect(statSync(a.binary).size).toBeGreaterThan(20 * 1024 * 1024); // the Bun runtime is in there
      if (a.target.os !== "windows") expect(statSync(a.binary).mode & 0o777).toBe(0o755);

      const archive = new Uint8Array(readFileSync(join(rel.outDir, a.file)));
      const binary = new Uint8Array(readFileSync(a.binary));
      const member = a.target.os === "windows" ? readZip(archive) : readTar(gunzipSync(archive));
      expect(member.name).toBe(a.target.os === "windows" ? "gostash.exe" : "gostash");
      expect("members" in member ? member.members : member.entries).toBe(1);
      expect(member.mode & 0o777).toBe(0o755);
      expect(sha256(member.data)).toBe(sha256(binary));
      if (a.xz) {
        // The same tar inside, through the system's xz (as install.sh unpacks it).
        const p = Bun.spawnSync(["xz", "-dc", join(rel.outDir, a.xz.file)], { stdout: "pipe", stderr: "pipe" });
        expect(p.exitCode).toBe(0);
        const inner = readTar(new Uint8Array(p.stdout));
        expect([inner.name, inner.members, inner.mode & 0o777]).toEqual(["gostash", 1, 0o755]);
        expect(sha256(inner.data)).toBe(sha256(binary));
      }
    }, 60_000);
  }

  test("macOS signatures: checked page by page; darwin-arm64 comes out validly signed, darwin-x64 is flagged", async () => {
    const arm = rel.artifacts.find((a) => a.target.name === "darwin-arm64")!;
    const x64 = rel.artifacts.find((a) => a.target.name === "darwin-x64")!;
    const armSig = checkMachoSignature(new Uint8Array(readFileSync(arm.binary)))!;
    const x64Sig = checkMachoSignature(new Uint8Array(readFileSync(x64.binary)));
    console.error(`test/dist: darwin-arm64 signature ${JSON.stringify(armSig)}; darwin-x64 ${JSON.stringify(x64Sig)}`);
    // Bun 1.4.5 signs arm64 output ad hoc, correctly: every page hash matches.
    expect(armSig).toMatchObject({ valid: true, adhoc: true, badPages: 0 });
    expect(arm.signature).toBe("valid");
    // Whatever the state of x64 (stale with Bun 1.4.5), release() reports it the same way.
    expect(x64.signature).toBe(!x64Sig ? "none" : x64Sig.valid ? "valid" : "invalid");
    // The checker notices a single flipped byte inside the signed range.
    const tampered = new Uint8Array(readFileSync(arm.binary));
    tampered[4096 * 10 + 7]! ^= 0xff;
    expect(checkMachoSignature(tampered)).toMatchObject({ valid: false, badPages: 1 });
    // The release workflow packs with --require-valid-signatures after codesign: an unsigned or stale one stops it.
    if (x64.signature !== "valid") {
      const dir = tempDir();
      try {
        const opts = { version: TEST_VERSION, outDir: dir.path, stageDir: rel.stageDir, packOnly: true, level: 1, log: () => {} };
        await expect(release({ ...opts, targets: ["darwin-x64"], requireValidSignatures: true })).rejects.toThrow(/darwin-x64: code signature is/);
        expect((await release({ ...opts, targets: ["darwin-arm64"], requireValidSignatures: true })).artifacts[0]!.signature).toBe("valid");
      } finally {
        dir.cleanup();
      }
    }
  }, 120_000);

  test("the host's tar and unzip read the archives", async () => {
    const linux = rel.artifacts.find((a) => a.target.name === "linux-x64")!;
    const t = await run(["tar", "-tvzf", join(rel.outDir, linux.file)], { timeoutMs: 60_000 });
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/^-rwxr-xr-x .* gostash\n$/);
    const x = await run(["tar", "-tvJf", join(rel.outDir, linux.xz!.file)], { timeoutMs: 60_000 });
    expect(x.code).toBe(0);
    expect(x.stdout).toMatch(/^-rwxr-xr-x .* gostash\n$/);
    const win = rel.artifacts.find((a) => a.target.name === "windows-x64")!;
    const z = await run(["unzip", "-Z", join(rel.outDir, win.file)], { timeoutMs: 60_000 });
    expect(z.code).toBe(0);
    expect(z.stdout).toMatch(/-rwxr-xr-x .* gostash\.exe/);
  }, 60_000);

  test("the linux-x64 binary runs and reports the injected version", async () => {
    const a = rel.artifacts.find((x) => x.target.name === "linux-x64")!;
    const r = await run([a.binary, "version"], { timeoutMs: 30_000, cwd: rel.outDir });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`gostash ${TEST_VERSION} (bun ${Bun.version}, linux/x64)\n`);
  }, 60_000);

  // qemu-user and Debian's arm64 glibc for cross builds (libc6-arm64-cross,
  // no multiarch set-up) come from scripts/tools/apt-dist.sh.
  test("the linux-arm64 binary runs under qemu-aarch64", async () => {
    const a = rel.artifacts.find((x) => x.target.name === "linux-arm64")!;
    const r = await run(["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", a.binary, "version"], { timeoutMs: 120_000, cwd: rel.outDir });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`gostash ${TEST_VERSION} (bun ${Bun.version}, linux/arm64)\n`);
  }, 150_000);

  test("packing is reproducible: same binaries and version give the same bytes", async () => {
    const dir = tempDir();
    try {
      const again = await release({
        version: TEST_VERSION,
        outDir: dir.path,
        stageDir: rel.stageDir,
        targets: ["linux-arm64", "windows-x64"],
        packOnly: true,
        level: 1,
        mtime: rel.mtime,
        log: () => {},
      });
      for (const a of again.artifacts) {
        const orig = rel.artifacts.find((x) => x.file === a.file)!;
        expect(a.sha256).toBe(orig.sha256);
        expect(a.xz?.sha256).toBe(orig.xz?.sha256);
      }
      // --pack-only lists only what it packed: linux-arm64 .tar.gz and .tar.xz, windows-x64 .zip.
      expect(readFileSync(join(dir.path, "SHA256SUMS"), "utf8").trim().split("\n")).toHaveLength(3);
    } finally {
      dir.cleanup();
    }
  }, 120_000);

  test("tar and zip writers: small inputs round-trip through the host tools", async () => {
    const dir = tempDir();
    try {
      const data = new TextEncoder().encode("#!/bin/sh\necho hi\n");
      await Bun.write(join(dir.path, "a.tar"), tarOne("gostash", data, 1_700_000_000));
      await Bun.write(join(dir.path, "a.zip"), zipOne("gostash", data, 1_700_000_000));
      const t = await run(["tar", "-xOf", join(dir.path, "a.tar")]);
      expect(t.stdout).toBe("#!/bin/sh\necho hi\n");
      const z = await run(["unzip", "-p", join(dir.path, "a.zip")]);
      expect(z.stdout).toBe("#!/bin/sh\necho hi\n");
      const zt = await run(["unzip", "-t", join(dir.path, "a.zip")]);
      expect(zt.code).toBe(0);
      await expect(release({ version: "1", targets: ["plan9-x64"], outDir: dir.path, stageDir: dir.path, packOnly: true })).rejects.toThrow(
        /unknown target/,
      );
    } finally {
      dir.cleanup();
    }
  });
});

test("binfmt rejects what is not a binary", () => {
  expect(() => inspectBinary(new TextEncoder().encode("#!/bin/sh\n".padEnd(64, " ")))).toThrow(/unknown binary format/);
});
