// `gostash ci summary` from its checked flags: where the records are, which
// daemon to ask, where the Markdown goes.

import { appendFileSync } from "node:fs";
import { localConfig } from "../config/config.ts";
import type { Flags } from "../config/flags.ts";
import { writeStderr } from "../util/std-output.ts";
import { CiError } from "./git.ts";
import { jobID } from "./job.ts";
import { gatherReport } from "./summary.ts";
import { renderMarkdown } from "./summary-md.ts";

/** `--http` as the daemon takes it (port, :port, host:port) or a URL, as a base URL. */
export function daemonURL(addr: string | undefined): string | null {
  if (!addr) return null;
  if (/^https?:\/\//.test(addr)) return addr.replace(/\/+$/, "");
  const m = /^(?:(.*):)?(\d+)$/.exec(addr);
  if (!m) throw new CiError(`ci summary: --http ${JSON.stringify(addr)} is not a port, host:port or URL`);
  const host = m[1] || "127.0.0.1";
  return `http://${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${m[2]}`;
}

export async function writeJobSummary(flags: Flags): Promise<number> {
  const report = await gatherReport({
    cacheDir: localConfig(flags).cacheDir,
    job: flags.string("job") ?? jobID(),
    since: Date.now() - flags.number("since"),
    daemonURL: daemonURL(flags.string("http")),
    token: flags.string("token") ?? null,
  });
  const md = renderMarkdown(report);
  const out = flags.string("out");
  if (out) {
    try {
      appendFileSync(out, `${md}\n`);
    } catch (err) {
      throw new CiError(`ci summary: cannot append to ${out} (${flags.source("out")}): ${(err as Error).message}`, { cause: err });
    }
    writeStderr(`gostash ci summary: ${report.rows.length} go commands summarised into ${out}\n`);
  } else process.stdout.write(md);
  for (const note of report.notes) writeStderr(`gostash ci summary: ${note}\n`);
  return 0;
}
