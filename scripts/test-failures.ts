// What each failed test printed, kept while `bun test` streams its report so
// scripts/test.ts can print it again just above its closing line.
//
// Why: CI keeps only the tail of a run's output, and a 700-line report puts a
// failure's reason (the expect diff, the figures the test logged) far from
// that tail; the list bun prints at its end names the failed tests but not
// why. Bun's report on stderr is, per test, whatever the test printed and
// then one "(pass) name" or "(fail) name" line, after a "file.test.ts:"
// header per file; so a failure's reason is the lines since the previous
// result or header.

/** Lines kept per failure: the end of its output, where the error is. */
const MAX_LINES = 80;

const RESULT = /^\((pass|fail|skip|todo)\) /;
/** Bun's closing list of the failed tests ("1 tests failed:"): names again, not new failures. */
const CLOSING_LIST = /^\d+ tests? failed:$/;
const FILE_HEADER = /^\S.*\.(test|spec|fixture)\.[cm]?[jt]sx?:$/;

export interface Failure {
  file: string;
  /** The "(fail) ..." line. */
  title: string;
  /** What the test printed before it, MAX_LINES at most. */
  output: string[];
}

export class FailureLog {
  readonly failures: Failure[] = [];
  private file = "";
  private since: string[] = [];
  private partial = "";
  /** Bun's closing list has started: nothing after it is a test's output. */
  private done = false;

  /** Feeds a chunk of bun test's stderr, split anywhere. */
  push(text: string): void {
    const lines = (this.partial + text).split("\n");
    this.partial = lines.pop()!;
    for (const line of lines) this.line(line);
  }

  private line(line: string): void {
    if (this.done) return;
    if (CLOSING_LIST.test(line)) {
      this.done = true;
    } else if (FILE_HEADER.test(line)) {
      this.file = line.slice(0, -1);
      this.since = [];
    } else if (RESULT.test(line)) {
      if (line.startsWith("(fail) ")) this.failures.push({ file: this.file, title: line, output: this.since });
      this.since = [];
    } else {
      this.since.push(line);
      if (this.since.length > MAX_LINES) this.since.shift();
    }
  }

  /** The failures as text to print again, or "" when none failed. */
  report(): string {
    if (!this.failures.length) return "";
    const out = [`\n=== ${this.failures.length} failed; what each printed (the last ${MAX_LINES} lines at most) ===`];
    for (const f of this.failures) out.push("", `--- ${f.file}`, ...f.output, f.title);
    return out.join("\n") + "\n";
  }
}
