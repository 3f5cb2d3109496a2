// `gostash mod export --out DIR|FILE.tar.gz [--go-mod go.mod | module@version ...]`:
// runs the real `go mod download -json` (the go.mod's whole module graph,
// "all", or the listed module@version) with GOMODCACHE and GOPATH in a
// temporary directory, then writes
//
//   <out>/<module>/@v/<version>.info|.mod|.zip    from $GOMODCACHE/cache/download
//   <out>/sumdb/<name>/lookup/..., tile/...        the checksum-database answers the
//                                                  go command used (same place)
//                                                  and every narrower partial tile a client
//                                                  starting afresh may ask for (sumdb/tiles.ts)
//   <out>/sumdb/<name>/latest                      its signed tree head ($GOPATH/pkg/sumdb)
//   <out>/sumdb/<name>/supported                   empty: the database is served here
//   <out>/MANIFEST                                 "sha256hex  path" per file, sorted
//
// usable as GOPROXY=file://<out> with GOSUMDB=<name or key>, no network.
// Lock, temporary and .ziphash files are left out. A .tar.gz is written
// with the system tar.

import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { completeTiles, dirTileFiles, storedTreeSizes } from "../sumdb/tiles.ts";
import { isJunk, walkFiles } from "./tree.ts";

export interface ExportOptions {
  out: string;
  goMod: string | null;
  modules: string[];
  goproxy: string | null;
  gosumdb: string | null;
  progress: { update(line: string): void; note(line: string): void; done(): void };
  /** Extra environment for the go command (tests). */
  env?: Record<string, string>;
  timeoutMs?: number;
}

function checkOptions(o: ExportOptions): void {
  if (!o.out) throw new Error("config: mod export needs --out DIR or --out FILE.tar.gz");
  if (!o.goMod && o.modules.length === 0) throw new Error("config: mod export needs --go-mod FILE or module@version arguments");
  for (const m of o.modules) if (!/^[^@\s]+@[^@\s]+$/.test(m)) throw new Error(`config: mod export: ${JSON.stringify(m)} is not module@version`);
}

/** Runs `go mod download -json` in tmp/work with GOPATH tmp/gopath; returns how many modules it reported. */
async function goModDownload(o: ExportOptions, tmp: string): Promise<number> {
  const work = join(tmp, "work");
  mkdirSync(work);
  if (o.goMod) {
    const src = resolve(o.goMod);
    copyFileSync(src, join(work, "go.mod"));
    const sum = join(dirname(src), "go.sum");
    if (existsSync(sum)) copyFileSync(sum, join(work, "go.sum"));
  }
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    GOPATH: join(tmp, "gopath"),
    GOMODCACHE: join(tmp, "gopath", "pkg", "mod"),
    GOFLAGS: "-mod=mod",
    GOWORK: "off",
    ...(o.goproxy ? { GOPROXY: o.goproxy } : {}),
    ...(o.gosumdb ? { GOSUMDB: o.gosumdb } : {}),
    ...o.env,
  };
  const args = ["go", "mod", "download", "-json", ...(o.goMod ? ["all"] : o.modules)];
  o.progress.update(`running ${args.join(" ")}`);
  const p = Bun.spawn(args, { cwd: work, env, stdout: "pipe", stderr: "pipe", timeout: o.timeoutMs ?? 3600_000 });
  const [stdout, stderr] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  const code = await p.exited;
  const errors: string[] = [];
  let count = 0;
  // The output is a stream of JSON objects.
  for (const chunk of stdout.split(/\n}\n?/).filter((s) => s.trim())) {
    try {
      const m = JSON.parse(`${chunk}\n}`) as { Path: string; Version: string; Error?: string };
      count++;
      if (m.Error) errors.push(`${m.Path}@${m.Version}: ${m.Error}`);
    } catch {
      // not an object boundary; the exit status decides
    }
  }
  if (code !== 0 || errors.length) throw new Error(`go mod download failed (exit ${code}):\n${errors.join("\n")}\n${stderr.trim()}`);
  return count;
}

/** The export tree being written, with its MANIFEST lines. */
class ExportTree {
  readonly manifest: string[] = [];
  files = 0;
  bytes = 0;

  constructor(
    readonly dir: string,
    private readonly progress: ExportOptions["progress"],
  ) {}

  added(rel: string, data: Uint8Array | string): void {
    this.manifest.push(`${createHash("sha256").update(data).digest("hex")}  ${rel}`);
    this.files++;
    this.bytes += typeof data === "string" ? Buffer.byteLength(data) : data.length;
  }

  async copy(from: string, rel: string): Promise<void> {
    const dst = join(this.dir, rel);
    mkdirSync(dirname(dst), { recursive: true });
    copyFileSync(from, dst);
    this.added(rel, await readFile(dst));
    this.progress.update(`${this.files} files (${(this.bytes / 1048576).toFixed(1)} MiB)`);
  }

  /** Each checksum database used: its latest signed tree head, the narrower partial tiles (sumdb/tiles.ts), "supported". */
  async addDatabase(name: string, sumdbState: string): Promise<void> {
    const latest = join(sumdbState, name, "latest");
    if (existsSync(latest)) await this.copy(latest, `sumdb/${name}/latest`);
    const dbDir = join(this.dir, "sumdb", name);
    const dbFiles = dirTileFiles(dbDir, (rel, data) => this.added(`sumdb/${name}/${rel}`, data));
    await completeTiles(dbFiles, await storedTreeSizes(dbFiles, (rel) => walkFiles(join(dbDir, rel))));
    const sup = join(dbDir, "supported");
    if (!existsSync(sup)) {
      mkdirSync(dirname(sup), { recursive: true });
      writeFileSync(sup, "");
      this.added(`sumdb/${name}/supported`, "");
    }
  }

  writeManifest(): void {
    this.manifest.sort((a, b) => (a.slice(66) < b.slice(66) ? -1 : 1));
    writeFileSync(join(this.dir, "MANIFEST"), this.manifest.map((l) => `${l}\n`).join(""));
  }
}

/** The names of the checksum databases the go command used (its cache/download/sumdb and $GOPATH/pkg/sumdb). */
function databasesUsed(dl: string, sumdbState: string): Set<string> {
  const names = new Set<string>();
  for (const d of [join(dl, "sumdb"), sumdbState]) {
    if (existsSync(d)) for (const n of readdirSync(d)) if (statSync(join(d, n)).isDirectory()) names.add(n);
  }
  return names;
}

async function writeTarball(tree: string, out: string): Promise<void> {
  mkdirSync(dirname(out), { recursive: true });
  const t = Bun.spawn(["tar", "-czf", out, "-C", tree, "."], { stdout: "ignore", stderr: "pipe", timeout: 3600_000 });
  const err = await new Response(t.stderr).text();
  if ((await t.exited) !== 0) throw new Error(`tar -czf ${out} failed: ${err.trim()}`);
}

export async function runExport(o: ExportOptions): Promise<number> {
  checkOptions(o);
  const t0 = performance.now();
  const tmp = mkdtempSync(join(tmpdir(), "gostash-export-"));
  try {
    const count = await goModDownload(o, tmp);
    const tarball = /\.(tar\.gz|tgz)$/.test(o.out);
    const tree = new ExportTree(tarball ? join(tmp, "tree") : resolve(o.out), o.progress);
    mkdirSync(tree.dir, { recursive: true });
    const dl = join(tmp, "gopath", "pkg", "mod", "cache", "download");
    for (const rel of walkFiles(dl)) {
      if (!isJunk(rel.slice(rel.lastIndexOf("/") + 1))) await tree.copy(join(dl, rel), rel);
    }
    const sumdbState = join(tmp, "gopath", "pkg", "sumdb");
    for (const n of databasesUsed(dl, sumdbState)) await tree.addDatabase(n, sumdbState);
    tree.writeManifest();
    if (tarball) await writeTarball(tree.dir, resolve(o.out));
    o.progress.done();
    const s = (performance.now() - t0) / 1000;
    const mib = tree.bytes / 1048576;
    process.stderr.write(`gostash mod export: ${resolve(o.out)}: ${count} modules, ${tree.files} files (${mib.toFixed(1)} MiB) in ${s.toFixed(2)}s (${(mib / s).toFixed(1)} MiB/s)\n`);
    return 0;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
