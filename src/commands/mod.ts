// `gostash mod import SRC` and `gostash mod export --out DIR|FILE.tar.gz`:
// move module downloads between the go command's module cache, export
// trees (GOPROXY=file://...) and the module proxy's store
// (src/modproxy/transfer/import.ts, export.ts). Progress and the summary go to
// stderr: a self-rewriting line on a terminal, plain lines otherwise.

import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, type Stats } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { defineCommand } from "citty";
import { checkCacheDir } from "../cli/cache-dir.ts";
import { localConfig, logConfig, s3Config, type S3Config } from "../config/config.ts";
import { ConfigError } from "../config/error.ts";
import { readFlags, toCittyArgs } from "../config/flags.ts";
import { localFlags, logFlags, modFlags, modproxyFlags, s3Flags } from "../config/options.ts";
import { checkGlobs, modproxySettings } from "../modproxy/config.ts";
import { parseGoSum } from "../modproxy/module/gosum.ts";
import { importTree, type ImportStats } from "../modproxy/transfer/import.ts";
import { createImportSumdb, verifierFor } from "../modproxy/transfer/import-sumdb.ts";
import type { PrefixPatterns } from "../modproxy/module/globs.ts";
import { ModStore } from "../modproxy/storage/store.ts";
import { createLogger, type Logger } from "../util/log.ts";
import { Metrics } from "../util/metrics.ts";
import { noSubcommand } from "../cli/subcommand.ts";

const importSpecs = {
  ...logFlags,
  ...localFlags,
  ...s3Flags,
  "modproxy-dir": modproxyFlags["modproxy-dir"],
  "go-sum": modFlags["go-sum"],
  sumdb: modproxyFlags.sumdb,
  "sumdb-key": modFlags["sumdb-key"],
  "allow-unverified": modFlags["allow-unverified"],
  "sumdb-concurrency": modFlags["sumdb-concurrency"],
  private: modproxyFlags.private,
  offline: modproxyFlags.offline,
  upstream: modproxyFlags.upstream,
  "upstream-timeout": modproxyFlags["upstream-timeout"],
  "upstream-retries": modproxyFlags["upstream-retries"],
};
const exportSpecs = { ...logFlags, out: modFlags.out, "go-mod": modFlags["go-mod"], goproxy: modFlags.goproxy, gosumdb: modFlags.gosumdb };

/** citty drops a nested subcommand's result: the subcommand leaves its exit status here and `mod` returns it. */
let status: number | undefined;

function mb(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

/** Progress on stderr: one rewritten line on a TTY (at most every 100ms), a plain line every 2s otherwise. */
export class Progress {
  private last = 0;
  private shown = false;
  constructor(
    private readonly what: string,
    private readonly tty = process.stderr.isTTY === true,
  ) {}
  update(line: string): void {
    const now = performance.now();
    if (now - this.last < (this.tty ? 100 : 2000)) return;
    this.last = now;
    if (this.tty) {
      process.stderr.write(`\r\x1b[K${this.what}: ${line}`);
      this.shown = true;
    } else process.stderr.write(`${this.what}: ${line}\n`);
  }
  /** A line that must stay (a rejection): clears the progress line first. */
  note(line: string): void {
    if (this.tty && this.shown) process.stderr.write("\r\x1b[K");
    this.shown = false;
    process.stderr.write(`${this.what}: ${line}\n`);
  }
  done(): void {
    if (this.tty && this.shown) process.stderr.write("\r\x1b[K");
    this.shown = false;
  }
}

/** Extracts a .tar.gz with the system tar into a temp dir; returns [dir, cleanup]. */
async function extract(file: string): Promise<[string, () => void]> {
  const dir = mkdtempSync(join(tmpdir(), "gostash-import-"));
  const p = Bun.spawn(["tar", "-xzf", file, "-C", dir], { stdout: "ignore", stderr: "pipe", timeout: 3600_000 });
  const err = await new Response(p.stderr).text();
  if ((await p.exited) !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`tar -xzf ${file} failed: ${err.trim()}`);
  }
  return [dir, () => rmSync(dir, { recursive: true, force: true })];
}

function summary(s: ImportStats, db: string | null): string {
  const rate = s.seconds > 0 ? s.importedBytes / 1048576 / s.seconds : 0;
  const why = Object.entries(s.unverifiedWhy).map(([w, n]) => `${n} ${w}`);
  return (
    `imported ${s.imported} files (${mb(s.importedBytes)}), skipped ${s.skipped}, rejected ${s.rejected.length}` +
    (s.sumdbVerified ? `, ${s.sumdbVerified} .zip/.mod verified by checksum database ${db}` : "") +
    (s.unverified ? `, ${s.unverified} .zip/.mod unverified (${why.join(", ")})` : "") +
    ` in ${s.seconds.toFixed(2)}s (${(s.files / Math.max(s.seconds, 1e-9)).toFixed(0)} files/s, ${rate.toFixed(1)} MiB/s)`
  );
}

/**
 * Paths never sent to the checksum database: --private (the same flag as
 * serve's, so GOPRIVATE when neither it nor GOSTASH_PRIVATE is set),
 * GONOSUMDB and GOPRIVATE together (the go command uses GOPRIVATE only when
 * GONOSUMDB is unset; a name leaked to a public database cannot be taken
 * back, so here any of them is enough).
 */
function noSumdbGlobs(flag: string | undefined, flagSource: string): PrefixPatterns {
  // A bad glob is reported as the user set it (--private, GOSTASH_PRIVATE or GOPRIVATE) first.
  if (flag) checkGlobs(flag, flagSource);
  const list = [...new Set([flag, process.env.GONOSUMDB, process.env.GOPRIVATE].filter(Boolean))].join(",");
  return checkGlobs(list, "--private/GONOSUMDB/GOPRIVATE");
}

/** The bucket's module mirror, for an import with --bucket. */
async function openMirror(s3: S3Config, logger: Logger) {
  const [{ createS3Client }, { createS3Mirror }] = await Promise.all([import("../s3/client.ts"), import("../modproxy/storage/mirror.ts")]);
  const metrics = new Metrics();
  return createS3Mirror({ client: createS3Client(s3, { metrics, logger }), readOnly: s3.readOnly, logger, metrics });
}

const importCommand = defineCommand({
  meta: {
    name: "import",
    description:
      "Load a $GOMODCACHE/cache/download tree, or a `gostash mod export` directory or .tar.gz, into the module proxy's store, re-hashing every .zip and .mod and checking it against --go-sum or the checksum database",
  },
  args: { ...toCittyArgs(importSpecs), src: { type: "positional", required: true, description: "Directory or .tar.gz to import" } },
  async run({ args, rawArgs }) {
    const flags = readFlags(rawArgs, importSpecs, 1);
    const logger = createLogger(logConfig(flags));
    const src = String(args.src);
    const local = localConfig(flags);
    const cfg = modproxySettings(flags, local.cacheDir);
    checkCacheDir(cfg.dir, flags.source(flags.given("modproxy-dir") ? "modproxy-dir" : "cache-dir"), "the module proxy's store");
    const store = new ModStore(cfg.dir);
    const goSumFiles = flags.string("go-sum");
    const goSum = goSumFiles ? new Map<string, Set<string>>() : undefined;
    if (goSum) for (const f of goSumFiles!.split(",").filter(Boolean)) parseGoSum(readInput(f, flags.source("go-sum")), goSum);
    // Files without a go.sum line are checked against the first --sumdb database, unless offline or off.
    const db = cfg.offline || cfg.sumdbs.length === 0 ? null : cfg.sumdbs[0]!;
    const noSumdbReason = cfg.offline ? "no checksum database: --offline" : "no checksum database: --sumdb off";
    const concurrency = flags.number("sumdb-concurrency");
    if (concurrency < 1) throw new ConfigError(`${flags.source("sumdb-concurrency")} must be at least 1, got ${concurrency}`);
    const verifier = db ? verifierFor(db.name, flags.string("sumdb-key")) : null;
    const s3 = s3Config(flags);
    const mirror = s3 ? await openMirror(s3, logger) : undefined;
    let dir = src;
    let cleanup = () => {};
    if (statInput(src, "mod import").isFile()) [dir, cleanup] = await extract(src);
    const progress = new Progress("gostash mod import");
    try {
      const stats = await importTree({
        src: dir,
        store,
        goSum,
        mirror,
        sumdb: db ? createImportSumdb({ cfg, store, verifier, metrics: new Metrics(), logger, concurrency }) : undefined,
        noSumdbReason,
        noSumdb: noSumdbGlobs(flags.string("private"), flags.source("private")),
        allowUnverified: flags.bool("allow-unverified"),
        onFile: (s, rel, outcome, reason) => {
          if (outcome === "rejected") progress.note(`REJECTED ${rel}: ${reason}`);
          progress.update(`${s.files} files, ${s.imported} imported (${mb(s.importedBytes)}), ${s.skipped} skipped, ${s.rejected.length} rejected`);
        },
      });
      if (mirror) {
        const left = await mirror.flush(600_000);
        if (left) progress.note(`${left} uploads to the bucket did not finish`);
      }
      progress.done();
      process.stderr.write(`gostash mod import: ${store.dir}: ${summary(stats, db?.name ?? null)}\n`);
      for (const r of stats.rejected) process.stderr.write(`gostash mod import: rejected ${r.rel}: ${r.reason}\n`);
      status = stats.rejected.length ? 1 : 0;
      return status;
    } finally {
      cleanup();
    }
  },
});

/**
 * Without --go-mod or module@version arguments, mod export exports the
 * module it runs in: the go.mod in the current directory or the nearest
 * parent, as the go command finds it.
 */
function currentGoMod(from = process.cwd()): string {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const file = join(dir, "go.mod");
    if (existsSync(file)) {
      process.stderr.write(`gostash mod export: exporting the module graph of ${file}\n`);
      return file;
    }
    if (dirname(dir) === dir) break;
  }
  throw new ConfigError("mod export needs --go-mod FILE or module@version arguments (there is no go.mod here or in a parent directory)");
}

const exportCommand = defineCommand({
  meta: {
    name: "export",
    description:
      "Write the modules a go.mod needs (or module@version ...) as a GOPROXY=file:// tree with the checksum-database files and a MANIFEST",
  },
  args: { ...toCittyArgs(exportSpecs) },
  async run({ args, rawArgs }) {
    const flags = readFlags(rawArgs, exportSpecs, Number.MAX_SAFE_INTEGER);
    const { runExport } = await import("../modproxy/transfer/export.ts");
    const positional = (args._ as string[] | undefined) ?? [];
    status = await runExport({
      out: flags.string("out") ?? "",
      goMod: flags.string("go-mod") ?? (positional.length ? null : currentGoMod()),
      modules: positional,
      goproxy: flags.string("goproxy") ?? null,
      gosumdb: flags.string("gosumdb") ?? null,
      progress: new Progress("gostash mod export"),
    });
    return status;
  },
});

/** A file or directory the user named, or a ConfigError naming it and why it cannot be read. */
function statInput(path: string, what: string): Stats {
  try {
    return statSync(path);
  } catch (err) {
    throw new ConfigError(`${what}: ${path}: ${readableWhy(err)}`, { cause: err });
  }
}

function readInput(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`${what}: ${path}: ${readableWhy(err)}`, { cause: err });
  }
}

function readableWhy(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOENT" ? "no such file or directory" : code === "EISDIR" ? "is a directory" : code === "EACCES" ? "permission denied" : (err as Error).message;
}

export default defineCommand({
  meta: { name: "mod", description: "Import module downloads into the module proxy's store, or export them as a GOPROXY=file:// tree" },
  subCommands: { import: importCommand, export: exportCommand },
  run() {
    // Set by the subcommand that ran; none ran when the user named none.
    return status ?? noSubcommand("mod", ["import", "export"]);
  },
});
