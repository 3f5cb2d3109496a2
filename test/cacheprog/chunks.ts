// Test helper: a byte stream cut into chunks at given points, as a socket or
// a pipe may deliver it.

/** bytes cut at every point in cuts (taken modulo length + 1), in order; no empty chunks. */
export function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    if (p > prev) out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}
