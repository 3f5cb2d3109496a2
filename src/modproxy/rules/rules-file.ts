// The --rules file (format: rules.ts), reloaded when it changes.
//
// Requests stat the file at most once a second (no watcher to leak, and
// it works the same whether an editor rewrites the file in place or
// writes a new one and renames it over: the inode, size or change time
// differ either way). A file that cannot be read or parsed on reload
// leaves the previous rules in force, logs one error for that version of
// the file and counts modproxy_rules_reload_errors; at start-up it is a
// configuration error (the daemon does not start).

import { readFileSync, statSync } from "node:fs";
import type { Logger } from "../../util/log.ts";
import type { Metrics } from "../../util/metrics.ts";
import { parseRules, RulesError, type RuleSet } from "./rules.ts";

export interface RulesFileOptions {
  metrics: Metrics;
  logger: Logger;
  /** How often requests may stat the file (default 1000ms; tests use 0). */
  checkEveryMs?: number;
}

/** Identifies one version of the file without reading it. */
function signature(path: string): string {
  const s = statSync(path, { bigint: true });
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

/** Reads and parses the file; a missing or bad file is a "config: --rules" error. */
export function loadRulesFile(path: string): RuleSet {
  try {
    return parseRules(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`config: --rules ${path}: ${(err as Error).message}`);
  }
}

export class RulesFile {
  private rules: RuleSet;
  private sig: string;
  /** The version that failed last, so it is reported once. */
  private failedSig: string | null = null;
  private checkedAt = 0;
  private readonly every: number;

  /** Loads the file; throws a "config: --rules" error when it is missing or bad. */
  constructor(
    readonly path: string,
    private readonly o: RulesFileOptions,
  ) {
    this.every = o.checkEveryMs ?? 1000;
    try {
      this.sig = signature(path);
    } catch (err) {
      throw new Error(`config: --rules ${path}: ${(err as Error).message}`);
    }
    this.rules = loadRulesFile(path);
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
    let sig: string;
    let text: string;
    try {
      sig = signature(this.path);
      if (sig === this.sig || sig === this.failedSig) return;
      text = readFileSync(this.path, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      if (this.failedSig === code) return;
      this.failedSig = code;
      this.fail((err as Error).message);
      return;
    }
    try {
      this.rules = parseRules(text);
    } catch (err) {
      if (!(err instanceof RulesError)) throw err;
      this.failedSig = sig;
      this.fail(err.message);
      return;
    }
    this.sig = sig;
    this.failedSig = null;
    this.o.metrics.inc("modproxy_rules_reloads");
    this.o.logger.info(`modproxy: --rules ${this.path}: reloaded: ${this.describe()}`);
  }

  private fail(why: string): void {
    this.o.metrics.inc("modproxy_rules_reload_errors");
    this.o.logger.error(`modproxy: --rules ${this.path}: not reloaded, the previous rules stay in force: ${why}`);
  }
}
