// Just enough of ELF, Mach-O and PE to tell what a binary is built for.

export interface BinaryInfo {
  format: "elf" | "macho" | "pe";
  /** x64, arm64, or the raw machine number for anything else. */
  arch: string;
  /** Executable (not an object file or a library). */
  executable: boolean;
  /** ELF: the program interpreter (/lib64/ld-linux-x86-64.so.2, /lib/ld-musl-aarch64.so.1). */
  interpreter?: string;
  /** Mach-O: whether an LC_CODE_SIGNATURE load command is present. */
  codeSignature?: boolean;
  /** PE: 3 = console, 2 = GUI. */
  subsystem?: number;
}

export function inspectBinary(head: Uint8Array): BinaryInfo {
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  // ELF
  if (head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46) {
    if (head[4] !== 2) throw new Error("ELF: not 64-bit");
    if (head[5] !== 1) throw new Error("ELF: not little-endian");
    const type = dv.getUint16(0x10, true);
    const machine = dv.getUint16(0x12, true);
    const phoff = Number(dv.getBigUint64(0x20, true));
    const phentsize = dv.getUint16(0x36, true);
    const phnum = dv.getUint16(0x38, true);
    let interpreter: string | undefined;
    for (let i = 0; i < phnum; i++) {
      const ph = phoff + i * phentsize;
      if (ph + phentsize > head.length) throw new Error("ELF: program headers beyond the bytes read");
      if (dv.getUint32(ph, true) === 3 /* PT_INTERP */) {
        const off = Number(dv.getBigUint64(ph + 8, true));
        const size = Number(dv.getBigUint64(ph + 32, true));
        interpreter = new TextDecoder().decode(head.subarray(off, off + size)).replace(/\0+$/, "");
      }
    }
    return {
      format: "elf",
      arch: machine === 0x3e ? "x64" : machine === 0xb7 ? "arm64" : `0x${machine.toString(16)}`,
      executable: type === 2 || (type === 3 && interpreter !== undefined),
      ...(interpreter !== undefined ? { interpreter } : {}),
    };
  }
  // Mach-O, 64-bit little-endian (thin)
  if (dv.getUint32(0, true) === 0xfeedfacf) {
    const cpu = dv.getUint32(4, true);
    const filetype = dv.getUint32(12, true);
    const ncmds = dv.getUint32(16, true);
    let off = 32;
    let codeSignature = false;
    for (let i = 0; i < ncmds; i++) {
      if (off + 8 > head.length) throw new Error("Mach-O: load commands beyond the bytes read");
      const cmd = dv.getUint32(off, true);
      const size = dv.getUint32(off + 4, true);
      if (cmd === 0x1d /* LC_CODE_SIGNATURE */) codeSignature = true;
      if (size < 8) throw new Error("Mach-O: bad load command size");
      off += size;
    }
    return {
      format: "macho",
      arch: cpu === 0x01000007 ? "x64" : cpu === 0x0100000c ? "arm64" : `0x${cpu.toString(16)}`,
      executable: filetype === 2 /* MH_EXECUTE */,
      codeSignature,
    };
  }
  if (dv.getUint32(0, false) === 0xcafebabe) throw new Error("Mach-O: universal (fat) binary, expected a thin one");
  // PE
  if (head[0] === 0x4d && head[1] === 0x5a) {
    const pe = dv.getUint32(0x3c, true);
    if (dv.getUint32(pe, false) !== 0x50450000) throw new Error("PE: missing PE\\0\\0 signature");
    const machine = dv.getUint16(pe + 4, true);
    const characteristics = dv.getUint16(pe + 22, true);
    const opt = pe + 24;
    if (dv.getUint16(opt, true) !== 0x20b) throw new Error("PE: not PE32+ (64-bit)");
    return {
      format: "pe",
      arch: machine === 0x8664 ? "x64" : machine === 0xaa64 ? "arm64" : `0x${machine.toString(16)}`,
      executable: (characteristics & 0x0002) !== 0 && (characteristics & 0x2000) === 0, // EXECUTABLE_IMAGE, not DLL
      subsystem: dv.getUint16(opt + 68, true),
    };
  }
  throw new Error("unknown binary format");
}
