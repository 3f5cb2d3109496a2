// Archive writers for the release (scripts/release.ts), one regular file
// each: ustar (+ gzip or xz) and zip. The tar and zip writers are small
// enough to own, and keep the release independent of the host's tar/zip
// flavour (GNU vs BSD). xz is the system's `xz`: Bun has no xz encoder.
//
// Why .tar.xz beside .tar.gz: the binary is ~110 MiB, 93% of it the Bun
// runtime, which no build option shrinks; the archive format is what cuts
// the download (51.6 MiB as .tar.gz -> 37.2 MiB as .tar.xz with the x86
// filter, measured on 0.1.0 linux-x64). install.sh takes the .tar.xz where
// it can decompress it, and the .tar.gz everywhere else.
import { deflateRawSync } from "node:zlib";
import { ScriptError } from "./script-error.ts";

/**
 * xz-compresses data with the system xz, single-threaded so the same input
 * and xz version give the same bytes. `x86` adds xz's branch filter for x86
 * machine code (about 5% smaller; every xz since 5.0 reads it); arm64
 * builds get none, as xz's ARM64 filter needs xz 5.4 to decompress.
 * level 9 is "9e"; lower levels are for tests.
 */
export async function xzCompress(data: Uint8Array, o: { level: number; x86: boolean }): Promise<Uint8Array> {
  const preset = o.level >= 9 ? "9e" : String(Math.max(0, o.level));
  const args = ["xz", "-T1", "--format=xz", "--check=crc64", ...(o.x86 ? ["--x86"] : []), `--lzma2=preset=${preset}`, "-c"];
  let p;
  try {
    p = Bun.spawn(args, { stdin: data, stdout: "pipe", stderr: "pipe" });
  } catch (err) {
    throw new ScriptError(`release: xz is needed for the .tar.xz archives (apt-get install xz-utils, brew install xz): ${(err as Error).message}`);
  }
  const [out, err, code] = await Promise.all([new Response(p.stdout).arrayBuffer(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new ScriptError(`release: ${args.join(" ")} failed (exit ${code}): ${err.trim()}`);
  return new Uint8Array(out);
}

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

