// Build manifests: which actions one go command used, so that the next run
// of the same command on an empty local cache can fetch them before it
// asks (the policy is buildcache/prefetch.ts).
//
// Layout (in the bucket, under the optional --prefix):
//
//   key   manifests/<first actionhex>
//         keyed by the first action the go command asked for: the same for
//         the same command, tree and toolchain on any machine
//   body  zstd of "gostash-manifest 1\n" + one action ID (hex) per line,
//         in the order the go command used them; at most MAX_IDS lines
//
// A manifest that does not decode is ignored (and counted), never trusted:
// it only ever causes downloads that are verified like any other.

const MAGIC = "gostash-manifest 1\n";
/** A bigger build than this (more actions) keeps only its first ones. */
export const MAX_IDS = 50_000;
const ID = /^[0-9a-f]{64}$/;
/** Manifests larger than this are not read. */
export const MAX_MANIFEST_BYTES = 8 << 20;

export function manifestName(firstActionID: string): string {
  return `manifests/${firstActionID}`;
}

export function encodeManifest(ids: Iterable<string>): Uint8Array {
  const lines: string[] = [];
  for (const id of ids) {
    if (lines.length >= MAX_IDS) break;
    lines.push(id);
  }
  return Bun.zstdCompressSync(Buffer.from(MAGIC + lines.join("\n") + "\n"));
}

/** The action IDs of a manifest; throws if it is not one. */
export function decodeManifest(body: Uint8Array): string[] {
  const text = Buffer.from(Bun.zstdDecompressSync(body)).toString("latin1");
  if (!text.startsWith(MAGIC)) throw new Error("not a gostash manifest");
  const ids = text.slice(MAGIC.length).split("\n").filter((l) => l !== "");
  if (ids.length > MAX_IDS) throw new Error(`manifest lists ${ids.length} actions, more than ${MAX_IDS}`);
  for (const id of ids) if (!ID.test(id)) throw new Error(`manifest line ${JSON.stringify(id.slice(0, 80))} is not an action ID`);
  return ids;
}
