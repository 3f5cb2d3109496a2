// Asking a checksum database for the go.sum lines of module@version and
// believing the answer only once it is proven, as the go command does
// (golang.org/x/mod/sumdb Client.Lookup):
//
//   1. GET lookup/<module>@<version> -> "<id>\n<go.sum lines>\n<signed tree note>"
//   2. the note must carry a valid Ed25519 signature by the database's key
//      (note.ts), and names a tree of N records with its root hash
//   3. the record's hash must be the log's hash for record <id> in that
//      tree, read from hash tiles (tile/8/...) that are themselves proven
//      up to the signed root (tlog.ts)
//
// Answers: found (the lines), notfound (404/410 from the database),
// unreachable (network errors, 5xx, timeouts, no key: nothing was learned) and
// invalid (a signature or proof that fails: the database, or someone in
// between, lies). Lookups run at most `concurrency` at a time, each
// module@version once, and tiles are fetched once per run. A database that
// fails to answer 5 times in a row is not asked for a while (a circuit
// breaker, util/breaker.ts): an import of thousands of modules with the
// network down ends in seconds, each file "could not be asked".
//
// How bytes are fetched is the caller's: `get` (transfer/import-sumdb.ts goes
// through the module proxy's own sumdb proxy and store).

import { Breaker } from "../../util/breaker.ts";
import { type GoSums, parseGoSum } from "../module/gosum.ts";
import { escapePath, escapeVersion } from "../module/path.ts";
import { NoteError, openNote, type Verifier } from "./note.ts";
import { parseRecord, parseTree, readHashes, recordHash, storedHashIndex, equalHash, tilePath, TlogError, HASH_SIZE, type Tile } from "./tlog.ts";

export type SumdbAnswer =
  | { kind: "found"; sums: GoSums }
  | { kind: "notfound"; message: string }
  | { kind: "unreachable"; message: string }
  | { kind: "invalid"; message: string };

/** Fetches a path of the database ("lookup/...", "tile/..."); throws when it cannot be reached. */
export type SumdbGet = (path: string) => Promise<{ status: number; data: Uint8Array }>;

export interface SumdbCheckerOptions {
  name: string;
  /** Null when no key is known: nothing can be proven, every lookup is "unreachable". */
  verifier: Verifier | null;
  get: SumdbGet;
  /** Lookups in flight at once (default 16: lookups are latency-bound). */
  concurrency?: number;
}

/** The go command's tile height for sum.golang.org and every database it talks to. */
const TILE_HEIGHT = 8;

class Unreachable extends Error {}

function text(data: Uint8Array): string {
  return new TextDecoder().decode(data.subarray(0, 500)).trim();
}

export class SumdbChecker {
  private readonly answers = new Map<string, Promise<SumdbAnswer>>();
  private readonly tiles = new Map<string, Promise<Uint8Array>>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly limit: number;
  private readonly breaker = new Breaker({ threshold: 5 });
  private lastFailure = "";

  constructor(private readonly o: SumdbCheckerOptions) {
    this.limit = Math.max(1, o.concurrency ?? 16);
  }

  get name(): string {
    return this.o.name;
  }

  /** The database's go.sum lines for module@version, proven; never rejects. */
  lookup(module: string, version: string): Promise<SumdbAnswer> {
    const k = `${module}@${version}`;
    if (!this.o.verifier) return Promise.resolve({ kind: "unreachable", message: `no verifier key for ${this.o.name}: give --sumdb-key ${this.o.name}+HASH+KEY` });
    let a = this.answers.get(k);
    if (!a) {
      a = this.limited(async () => {
        if (!this.breaker.allow()) return { kind: "unreachable" as const, message: `not asked: it failed 5 times in a row (last: ${this.lastFailure})` };
        const answer = await this.lookupNow(module, version);
        if (answer.kind === "unreachable") {
          this.lastFailure = answer.message;
          this.breaker.failure();
        } else this.breaker.success();
        return answer;
      });
      this.answers.set(k, a);
    }
    return a;
  }

  private async limited<T>(f: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    this.running++;
    try {
      return await f();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  private async lookupNow(module: string, version: string): Promise<SumdbAnswer> {
    const v = this.o.verifier!;
    try {
      const res = await this.o.get(`lookup/${escapePath(module)}@${escapeVersion(version)}`);
      if (res.status === 404 || res.status === 410) return { kind: "notfound", message: text(res.data) || "not found" };
      if (res.status !== 200) return { kind: "unreachable", message: `HTTP ${res.status}${text(res.data) ? `: ${text(res.data)}` : ""}` };
      const rec = parseRecord(res.data);
      const tree = parseTree(openNote(rec.rest, v));
      if (rec.id >= tree.n) throw new TlogError(`record ${rec.id} is not in the signed tree of ${tree.n} records`);
      const [h] = await readHashes(tree, TILE_HEIGHT, [storedHashIndex(0, rec.id)], (ts) => Promise.all(ts.map((t) => this.tile(t))));
      if (!equalHash(h!, recordHash(rec.text))) throw new TlogError("cannot authenticate the record: it is not the one the signed tree holds");
      return { kind: "found", sums: parseGoSum(new TextDecoder().decode(rec.text)) };
    } catch (err) {
      if (err instanceof NoteError || err instanceof TlogError) return { kind: "invalid", message: err.message };
      return { kind: "unreachable", message: (err as Error).message };
    }
  }

  /** A hash tile, exactly w hashes; a partial tile the database no longer has is cut from the full one. */
  private tile(t: Tile): Promise<Uint8Array> {
    const path = tilePath(t);
    let p = this.tiles.get(path);
    if (!p) {
      p = (async () => {
        const want = t.w * HASH_SIZE;
        let res = await this.o.get(path);
        if ((res.status === 404 || res.status === 410) && t.w < 2 ** t.h) res = await this.o.get(tilePath({ ...t, w: 2 ** t.h }));
        if (res.status !== 200) throw new Unreachable(`${path}: HTTP ${res.status}${text(res.data) ? `: ${text(res.data)}` : ""}`);
        // A wider tile is fine: its first w hashes are the ones asked for.
        return res.data.length > want ? res.data.subarray(0, want) : res.data;
      })();
      this.tiles.set(path, p);
      p.catch(() => this.tiles.delete(path));
    }
    return p;
  }
}
