// The status page as one self-contained HTML document: the markup, the
// style and the scripts under ./page/ are imported as text, inlined into
// the binary by `bun build --compile`, and put together once. Nothing is
// fetched from anywhere else (the page must work on an air-gapped host),
// and the Content-Security-Policy says so to the browser: only this exact
// script and style may run (by their SHA-256), and the script may only
// talk to the daemon's own origin.

import { createHash } from "node:crypto";
import indexHtml from "./page/index.html" with { type: "text" };
import style from "./page/style.css" with { type: "text" };
import formatJs from "./page/format.page.js" with { type: "text" };
import chartsJs from "./page/charts.page.js" with { type: "text" };
import seriesJs from "./page/series.page.js" with { type: "text" };
import viewsJs from "./page/views.page.js" with { type: "text" };
import tablesJs from "./page/tables.page.js" with { type: "text" };
import appJs from "./page/app.page.js" with { type: "text" };

/** In the order they build on each other; app last (it starts the page). */
const SCRIPTS = [formatJs, chartsJs, seriesJs, viewsJs, tablesJs, appJs];

export interface StatusPage {
  html: string;
  /** The Content-Security-Policy header that goes with it. */
  csp: string;
}

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;

export function buildStatusPage(): StatusPage {
  // One scope for all the files, in strict mode, leaking nothing to window.
  const script = `(() => {\n"use strict";\n${SCRIPTS.join("\n")}\n})();\n`;
  // A text import of .html is typed as Bun's HTML bundle; with type "text" it is the file's text.
  const html = (indexHtml as unknown as string).replace("/*STYLE*/", () => style).replace("/*SCRIPT*/", () => script);
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(script)}`,
    `style-src ${sha256(style)}`,
    "connect-src 'self'",
    "img-src data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  return { html, csp };
}
