// `gostash mod export --out DIR|FILE.tar.gz [--go-mod go.mod | module@version ...]`:
// runs the real `go mod download -json` (the go.mod's whole module graph,
// "all", or the listed module@version) with GOMODCACHE and GOPATH in a
// temporary directory, then writes
//
//   <out>/<module>/@v/<version>.info|.mod|.zip    from $GOMODCACHE/cache/download
//   <out>/sumdb/<name>/lookup/..., tile/...        the checksum-database answers the
//                                                  go command used (same place)
//                                                  and every narrower partial tile a client
//                                                  starting afresh may ask for (tiles.ts)
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
import { isJunk, walkFiles } from "./import.ts";
import { completeTiles, dirTileFiles, storedTreeSizes } from "./tiles.ts";

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

export async function runExport(o: ExportOptions): Promise<number> {
  if (!o.out) throw new Error("config: mod export needs --out DIR or --out FILE.tar.gz");
  if (!o.goMod && o.modules.length === 0) throw new Error("config: mod export needs --go-mod FILE or module@version arguments");
  for (const m of o.modules) if (!/^[^@\s]+@[^@\s]+$/.test(m)) throw new Error(`config: mod export: ${JSON.stringify(m)} is not module@version`);
  const t0 = performance.now();
  const tmp = mkdtempSync(join(tmpdir(), "gostash-export-"));
  try {
    const work = join(tmp, "work");
    mkdirSync(work);
    if (o.goMod) {
      const src = resolve(o.goMod);
      copyFileSync(src, join(work, "go.mod"));
      const sum = join(dirname(src), "go.sum");
      if (existsSync(sum)) copyFileSync(sum, join(work, "go.sum"));
    }
    const modcache = join(tmp, "gopath", "pkg", "mod");
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      GOPATH: join(tmp, "gopath"),
      GOMODCACHE: modcache,
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

    const tarball = /\.(tar\.gz|tgz)$/.test(o.out);
    const tree = tarball ? join(tmp, "tree") : resolve(o.out);
    mkdirSync(tree, { recursive: true });
    const dl = join(modcache, "cache", "download");
    const manifest: string[] = [];
    let files = 0;
    let bytes = 0;
    const copy = async (from: string, rel: string) => {
      const dst = join(tree, rel);
      mkdirSync(dirname(dst), { recursive: true });
      copyFileSync(from, dst);
      const data = await readFile(dst);
      manifest.push(`${createHash("sha256").update(data).digest("hex")}  ${rel}`);
      files++;
      bytes += data.length;
      o.progress.update(`${files} files (${(bytes / 1048576).toFixed(1)} MiB)`);
    };
    for (const rel of walkFiles(dl)) {
      const base = rel.slice(rel.lastIndexOf("/") + 1);
      if (isJunk(base)) continue;
      await copy(join(dl, rel), rel);
    }
    // Each checksum database used: its latest signed tree head and "supported".
    const sumdbState = join(tmp, "gopath", "pkg", "sumdb");
    const names = new Set<string>();
    for (const d of [join(dl, "sumdb"), sumdbState]) {
      if (existsSync(d)) for (const n of readdirSync(d)) if (statSync(join(d, n)).isDirectory()) names.add(n);
    }
    for (const n of names) {
      const latest = join(sumdbState, n, "latest");
      if (existsSync(latest)) await copy(latest, `sumdb/${n}/latest`);
      // The narrower partial tiles a fresh client may ask for (see tiles.ts).
      const dbDir = join(tree, "sumdb", n);
      const dbFiles = dirTileFiles(dbDir, (rel, data) => {
        manifest.push(`${createHash("sha256").update(data).digest("hex")}  sumdb/${n}/${rel}`);
        files++;
        bytes += data.length;
      });
      await completeTiles(dbFiles, await storedTreeSizes(dbFiles, (rel) => walkFiles(join(dbDir, rel))));
      const sup = join(tree, "sumdb", n, "supported");
      if (!existsSync(sup)) {
        mkdirSync(dirname(sup), { recursive: true });
        writeFileSync(sup, "");
        manifest.push(`${createHash("sha256").update("").digest("hex")}  sumdb/${n}/supported`);
        files++;
      }
    }
    manifest.sort((a, b) => (a.slice(66) < b.slice(66) ? -1 : 1));
    writeFileSync(join(tree, "MANIFEST"), manifest.map((l) => `${l}\n`).join(""));
    if (tarball) {
      const out = resolve(o.out);
      mkdirSync(dirname(out), { recursive: true });
      const t = Bun.spawn(["tar", "-czf", out, "-C", tree, "."], { stdout: "ignore", stderr: "pipe", timeout: 3600_000 });
      const err = await new Response(t.stderr).text();
      if ((await t.exited) !== 0) throw new Error(`tar -czf ${out} failed: ${err.trim()}`);
    }
    o.progress.done();
    const s = (performance.now() - t0) / 1000;
    process.stderr.write(
      `gostash mod export: ${resolve(o.out)}: ${count} modules, ${files} files (${(bytes / 1048576).toFixed(1)} MiB) in ${s.toFixed(2)}s (${(bytes / 1048576 / s).toFixed(1)} MiB/s)\n`,
    );
    return 0;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
