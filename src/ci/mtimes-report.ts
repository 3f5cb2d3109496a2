// What `gostash ci mtimes` prints (stderr): one summary line with the rate,
// then one line per path it could not set.

import { setContentMtimes, type MtimesReport } from "./mtimes.ts";

export { setContentMtimes };

export function formatMtimesReport(r: MtimesReport): string {
  const n = r.files + r.symlinks + r.dirs;
  const rate = r.seconds > 0 ? Math.round((r.files + r.symlinks) / r.seconds) : 0;
  const parts = [`${r.files} files`, `${r.symlinks} symlinks`, `${r.dirs} directories`];
  if (r.submodules) parts.push(`${r.submodules} submodules`);
  let line =
    `gostash ci mtimes: ${r.dir}: ${parts.join(", ")} set from their content in ${r.seconds.toFixed(2)}s (${rate} files/s)` +
    (r.modified ? `; ${r.modified} modified in the work tree, timed from their current content` : "") +
    (r.absent ? `; ${r.absent} tracked but absent` : "") +
    (r.untimed ? `; ${r.untimed} left as they are (not the kind of file git tracks there, or a name that is not UTF-8)` : "") +
    (r.failed.length ? `; ${r.failed.length} could not be set` : "") +
    "\n";
  if (n === 0) line = `gostash ci mtimes: ${r.dir}: git tracks no files here; nothing to do\n`;
  for (const f of r.failed.slice(0, 20)) line += `gostash ci mtimes: ${f.path}: ${f.why}\n`;
  if (r.failed.length > 20) line += `gostash ci mtimes: ... and ${r.failed.length - 20} more\n`;
  return line;
}
