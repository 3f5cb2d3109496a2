// HTTP answers of the module and checksum-database proxies: plain-text
// errors (404/410 let the go command fall through to the next proxy),
// Cache-Control, ETag / If-None-Match, single byte ranges, HEAD.

export const IMMUTABLE = "public, max-age=31536000, immutable";

export function errorText(status: number, message: string, cacheControl = status === 404 || status === 410 ? "public, max-age=60" : "no-store"): Response {
  return new Response(`${message.replace(/\s+$/, "")}\n`, {
    status,
    headers: { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": cacheControl },
  });
}

export function contentType(name: string): string {
  if (name.endsWith(".zip")) return "application/zip";
  if (name.endsWith(".info") || name.endsWith("/@latest")) return "application/json";
  return "text/plain; charset=utf-8";
}

function etagFor(size: number, mtimeMs: number): string {
  return `"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}"`;
}

function notModified(req: Request, etag: string): boolean {
  const inm = req.headers.get("if-none-match");
  if (!inm) return false;
  return inm.split(",").some((t) => {
    const v = t.trim().replace(/^W\//, "");
    return v === etag || v === "*";
  });
}

/** Parses a single "bytes=" range against size; null when absent or not usable, "bad" when unsatisfiable. */
function parseRange(h: string | null, size: number): { start: number; end: number } | null | "bad" {
  if (!h) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(h.trim());
  if (!m || (m[1] === "" && m[2] === "")) return null; // multiple or malformed ranges: ignore, send all
  let start: number;
  let end: number;
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0) return "bad";
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== "" && Number(m[2]) < start) return null;
  }
  if (start >= size) return "bad";
  return { start, end };
}

export interface FileAnswer {
  path: string;
  size: number;
  mtimeMs: number;
}

/** Serves a stored file with ETag, Range and HEAD support. */
export function serveFile(req: Request, f: FileAnswer, name: string, cacheControl: string, extra: Record<string, string> = {}): Response {
  const etag = etagFor(f.size, f.mtimeMs);
  const headers: Record<string, string> = {
    "Content-Type": contentType(name),
    "Cache-Control": cacheControl,
    ETag: etag,
    "Last-Modified": new Date(f.mtimeMs).toUTCString(),
    "Accept-Ranges": "bytes",
    ...extra,
  };
  if (notModified(req, etag)) return new Response(null, { status: 304, headers });
  const file = Bun.file(f.path);
  const range = parseRange(req.headers.get("range"), f.size);
  if (range === "bad") {
    return new Response(null, { status: 416, headers: { ...headers, "Content-Range": `bytes */${f.size}` } });
  }
  if (range) {
    const len = range.end - range.start + 1;
    headers["Content-Range"] = `bytes ${range.start}-${range.end}/${f.size}`;
    headers["Content-Length"] = String(len);
    return new Response(req.method === "HEAD" ? null : file.slice(range.start, range.end + 1), { status: 206, headers });
  }
  headers["Content-Length"] = String(f.size);
  return new Response(req.method === "HEAD" ? null : file, { status: 200, headers });
}

/** Serves bytes held in memory (answers just fetched, or memory-only queries). */
export function serveData(req: Request, data: Uint8Array, mtimeMs: number, name: string, cacheControl: string, extra: Record<string, string> = {}): Response {
  const etag = etagFor(data.length, mtimeMs);
  const headers: Record<string, string> = {
    "Content-Type": contentType(name),
    "Cache-Control": cacheControl,
    ETag: etag,
    "Content-Length": String(data.length),
    ...extra,
  };
  if (notModified(req, etag)) return new Response(null, { status: 304, headers });
  return new Response(req.method === "HEAD" ? null : data, { status: 200, headers });
}
