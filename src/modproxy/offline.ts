// Offline mode (`--offline`, GOSTASH_OFFLINE): the proxy never contacts an
// upstream proxy or checksum database. Everything is answered from the
// disk store (and the S3 bucket when one is configured, handler.ts):
//
//   <module>/@v/<version>.info|.mod|.zip   stored copy, else the bucket, else 404
//   <module>/@v/list                       the canonical versions stored (those
//                                          with a .info or .mod), sorted by
//                                          semver; pseudo-versions left out, as
//                                          proxy.golang.org does
//   <module>/@latest                       .info JSON of the highest release,
//                                          else the highest prerelease (pseudo-
//                                          versions included); 404 if none
//   <module>/@v/<query>.info               404 (queries need the upstream)
//   sumdb/<name>/...                       stored answers only, else 404
//
// 404 (never 5xx) for everything unknown, so a go command with a GOPROXY list
// falls through to its next entry.

import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { Mirror } from "./mirror.ts";
import { isCanonicalVersion, PathError, unescapeVersion } from "./paths.ts";
import { IMMUTABLE, errorText, serveData, serveFile } from "./respond.ts";
import type { SumdbConfig } from "./sumdb.ts";
import type { ModStore } from "./store.ts";

export const OFFLINE_NOT_FOUND = "not found: gostash module proxy is offline and has no copy";

interface Semver {
  nums: [number, number, number];
  pre: string[];
}

function parseSemver(v: string): Semver | null {
  const m = /^v(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(v);
  if (!m) return null;
  return { nums: [Number(m[1]), Number(m[2]), Number(m[3])], pre: m[4] ? m[4].split(".") : [] };
}

/** semver.Compare for canonical versions (build suffixes such as +incompatible ignored). */
export function compareSemver(a: string, b: string): number {
  const x = parseSemver(a);
  const y = parseSemver(b);
  if (!x || !y) return x ? 1 : y ? -1 : a < b ? -1 : a > b ? 1 : 0;
  for (let i = 0; i < 3; i++) if (x.nums[i] !== y.nums[i]) return x.nums[i]! < y.nums[i]! ? -1 : 1;
  if (x.pre.length === 0 || y.pre.length === 0) return x.pre.length === y.pre.length ? 0 : x.pre.length === 0 ? 1 : -1;
  for (let i = 0; i < Math.min(x.pre.length, y.pre.length); i++) {
    const p = x.pre[i]!;
    const q = y.pre[i]!;
    if (p === q) continue;
    const pn = /^\d+$/.test(p);
    const qn = /^\d+$/.test(q);
    if (pn && qn) return p.length !== q.length ? (p.length < q.length ? -1 : 1) : p < q ? -1 : 1;
    if (pn !== qn) return pn ? -1 : 1;
    return p < q ? -1 : 1;
  }
  return x.pre.length === y.pre.length ? 0 : x.pre.length < y.pre.length ? -1 : 1;
}

const PSEUDO = /^v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;

export function isPseudoVersion(v: string): boolean {
  return PSEUDO.test(v);
}

export function isPrerelease(v: string): boolean {
  return (parseSemver(v)?.pre.length ?? 0) > 0;
}

/** Canonical versions of a module with a stored .info or .mod, sorted by semver. */
export function storedVersions(store: ModStore, escModule: string): string[] {
  let names: string[];
  try {
    names = readdirSync(store.path(`${escModule}/@v`));
  } catch {
    return [];
  }
  const out = new Set<string>();
  for (const n of names) {
    const m = /^(.+)\.(info|mod)$/.exec(n);
    if (!m) continue;
    try {
      const v = unescapeVersion(m[1]!);
      if (isCanonicalVersion(v)) out.add(v);
    } catch (err) {
      if (!(err instanceof PathError)) throw err;
    }
  }
  return [...out].sort(compareSemver);
}

/** The version @latest answers: highest release, else highest prerelease; null if none. */
export function latestOf(versions: string[]): string | null {
  const sorted = [...versions].sort(compareSemver);
  const rel = sorted.filter((v) => !isPrerelease(v));
  return rel.at(-1) ?? sorted.at(-1) ?? null;
}

/** `list` computed from the store. */
export function offlineList(req: Request, store: ModStore, escModule: string): Response {
  const versions = storedVersions(store, escModule).filter((v) => !isPseudoVersion(v));
  if (versions.length === 0 && storedVersions(store, escModule).length === 0) return errorText(404, OFFLINE_NOT_FOUND);
  const data = new TextEncoder().encode(versions.map((v) => `${v}\n`).join(""));
  return serveData(req, data, Date.now(), `${escModule}/@v/list`, "no-cache");
}

/** `@latest` computed from the store, as .info JSON (the stored .info when there is one). */
export async function offlineLatest(req: Request, store: ModStore, escModule: string): Promise<Response> {
  const v = latestOf(storedVersions(store, escModule));
  if (!v) return errorText(404, OFFLINE_NOT_FOUND);
  const escV = v.replace(/[A-Z]/g, (c) => `!${c.toLowerCase()}`);
  const info = await store.stat(`${escModule}/@v/${escV}.info`);
  let data: Uint8Array | null = null;
  if (info) {
    try {
      const text = await Bun.file(info.path).text();
      if ((JSON.parse(text) as { Version?: unknown }).Version === v) data = new TextEncoder().encode(text);
    } catch {
      data = null;
    }
  }
  data ??= new TextEncoder().encode(`${JSON.stringify({ Version: v })}\n`);
  return serveData(req, data, Date.now(), `${escModule}/@latest`, "no-cache");
}

const TILE = /^tile\/[0-9]{1,2}\/(data|[0-9]{1,2})(\/x[0-9]{3})*\/[0-9]{3}(\.p\/[0-9]{1,3})?$/;
const LOOKUP = /^lookup\/[^\0\\]+@[^\0\\/]+$/;

/** The checksum-database proxy, offline: stored answers (or the bucket's) only. */
export function createOfflineSumdb(store: ModStore, dbs: SumdbConfig[], mirror?: Mirror): (req: Request, rest: string) => Promise<Response> {
  const names = new Set(dbs.map((d) => d.name));
  for (const d of dbs) {
    const rel = `sumdb/${d.name}/supported`;
    if (!store.statSync(rel)) store.writeSync(rel, "");
  }
  return async (req, rest) => {
    const slash = rest.indexOf("/");
    const name = slash < 0 ? rest : rest.slice(0, slash);
    const path = slash < 0 ? "" : rest.slice(slash + 1);
    if (!names.has(name)) return errorText(404, `not found: checksum database ${JSON.stringify(name)} is not proxied here`);
    if (path === "supported") return new Response(null, { status: 200, headers: { "Cache-Control": "no-store" } });
    if (path !== "latest" && !TILE.test(path) && !(LOOKUP.test(path) && !path.includes(".."))) return errorText(404, "not found");
    const rel = `sumdb/${name}/${path}`;
    const immutable = path.startsWith("lookup/") || (TILE.test(path) && !path.includes(".p/"));
    const ctl = immutable ? IMMUTABLE : "no-cache";
    let st = await store.stat(rel);
    if (!st && mirror && immutable) {
      const r = await mirror.get(rel);
      if (r?.ok) {
        await store.write(rel, new Uint8Array(await new Response(r.body).arrayBuffer()));
        st = await store.stat(rel);
      }
    }
    if (st) return serveFile(req, st, rel, ctl);
    // A narrower partial tile is a prefix of any wider one (or of the full tile).
    const m = /^(tile\/([0-9]+)\/[0-9]+\/(?:x[0-9]{3}\/)*[0-9]{3})\.p\/([0-9]+)$/.exec(path);
    if (m) {
      const w = Number(m[3]);
      const tile = `sumdb/${name}/${m[1]}`;
      const candidates = [tile];
      try {
        for (const f of readdirSync(join(store.path(`${tile}.p`)))) if (/^[0-9]+$/.test(f) && Number(f) > w) candidates.push(`${tile}.p/${f}`);
      } catch {
        // none
      }
      for (const c of candidates) {
        const s = await store.stat(c);
        if (s && s.size >= w * 32) {
          const data = new Uint8Array(await Bun.file(s.path).slice(0, w * 32).arrayBuffer());
          return serveData(req, data, s.mtimeMs, rel, IMMUTABLE);
        }
      }
    }
    return errorText(404, OFFLINE_NOT_FOUND);
  };
}
