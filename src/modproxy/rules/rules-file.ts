// The --rules file (format: rules.ts), reloaded when it changes.
//
// Requests stat the file at most once a second (no watcher to leak, and
// it works the same whether an editor rewrites the file in place or
// writes a new one and renames it over: the inode, size or change time
// differ either way). A file read right after its last change is read
// again at the next check whatever its signature says (util/racy.ts: a
// same-size rewrite, `include` for `exclude`, in the same tick of the file
// system's clock leaves the signature as it was). A file that cannot be
// read or parsed on reload leaves the previous rules in force, logs one error for that version of
// the file and counts modproxy_rules_reload_errors; at start-up it is a
// configuration error (the daemon does not start).

import { readFileSync, statSync } from "node:fs";
import type { Logger } from "../../util/log.ts";
import type { Metrics } from "../../util/metrics.ts";
import { changedTooRecently } from "../../util/racy.ts";
import { parseRules, RulesError, type RuleSet } from "./rules.ts";

export interface RulesFileOptions {
  metrics: Metrics;
  logger: Logger;
  /** How often requests may stat the file (default 1000ms; tests use 0). */
  checkEveryMs?: number;
}

/** Identifies one version of the file without reading it; racy: it changed too recently for that to hold. */
function signature(path: string): { sig: string; racy: boolean } {
  const s = statSync(path, { bigint: true });
  return { sig: `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`, racy: changedTooRecently(Number(s.ctimeNs / 1_000_000n)) };
}

/** Reads and parses the file; a missing or bad file is a "config: --rules" error. */
export function loadRulesFile(path: string): RuleSet {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`config: --rules ${path}: ${(err as Error).message}`);
  }
  return parseRulesText(path, text);
}

function parseRulesText(path: string, text: string): RuleSet {
  try {
    return parseRules(text);
  } catch (err) {
    throw new Error(`config: --rules ${path}: ${(err as Error).message}`);
  }
}

export class RulesFile {
  private rules: RuleSet;
  /** The version of the file read last (its rules in force, or refused and reported). */
  private seen: { sig: string; racy: boolean; text: string };
  /** The error code of the last read that failed, so it is reported once. */
  private failedCode: string | null = null;
  private checkedAt = 0;
  private readonly every: number;

  /** Loads the file; throws a "config: --rules" error when it is missing or bad. */
  constructor(
    readonly path: string,
    private readonly o: RulesFileOptions,
  ) {
    this.every = o.checkEveryMs ?? 1000;
    try {
      this.seen = { ...signature(path), text: readFileSync(path, "utf8") };
    } catch (err) {
      throw new Error(`config: --rules ${path}: ${(err as Error).message}`);
    }
    this.rules = parseRulesText(path, this.seen.text);
    this.checkedAt = performance.now();
    o.logger.info(`modproxy: --rules ${path}: ${this.describe()}`);
  }

  private describe(): string {
    const n = this.rules.rules.length;
    return `${n} rule${n === 1 ? "" : "s"}, default ${this.rules.fallback.action}`;
  }

  /** The rules in force, reloaded first if the file changed. */
  current(): RuleSet {
    const now = performance.now();
    if (now - this.checkedAt >= this.every) {
      this.checkedAt = now;
      this.reloadIfChanged();
    }
    return this.rules;
  }

  private reloadIfChanged(): void {
    let version: { sig: string; racy: boolean; text: string };
    try {
      const { sig, racy } = signature(this.path);
      if (sig === this.seen.sig && !this.seen.racy) return;
      version = { sig, racy, text: readFileSync(this.path, "utf8") };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      if (this.failedCode === code) return;
      this.failedCode = code;
      this.fail((err as Error).message);
      return;
    }
    this.failedCode = null;
    const same = version.text === this.seen.text;
    this.seen = version;
    if (same) return; // read again only because the last read was racy, or the file came back as it was
    try {
      this.rules = parseRules(version.text);
    } catch (err) {
      if (!(err instanceof RulesError)) throw err;
      this.fail(err.message);
      return;
    }
    this.o.metrics.inc("modproxy_rules_reloads");
    this.o.logger.info(`modproxy: --rules ${this.path}: reloaded: ${this.describe()}`);
  }

  private fail(why: string): void {
    this.o.metrics.inc("modproxy_rules_reload_errors");
    this.o.logger.error(`modproxy: --rules ${this.path}: not reloaded, the previous rules stay in force: ${why}`);
  }
}
