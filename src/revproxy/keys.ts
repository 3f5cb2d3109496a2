// Names of cached responses. One URL, one entry: the key is the SHA-256 of
// "gostash-revproxy GET <url>", where <url> is scheme://host[:port]/path?query
// as the WHATWG URL parser normalises it (lower-case host, default port
// dropped). The prefix keeps keys apart from go-cache-plugin's (the SHA-256
// of the bare URL) under the same revproxy/ prefix of a shared bucket, and
// http:// and https:// of one path are different entries, as they are
// different resources.

import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Scheme } from "./targets.ts";

export function entryKey(url: string): string {
  return createHash("sha256").update(`gostash-revproxy GET ${url}`).digest("hex");
}

/** The URL a proxied request names, normalised, with the scheme it arrived with. */
export function canonicalURL(req: Request, scheme: Scheme): URL {
  const u = new URL(req.url);
  u.protocol = `${scheme}:`;
  u.hash = "";
  return u;
}

/** <dir>/<xx>/<key> */
export const localPath = (dir: string, key: string): string => join(dir, key.slice(0, 2), key);

/** revproxy/<xx>/<key> (the S3 client adds the --prefix). */
export const objectName = (key: string): string => `revproxy/${key.slice(0, 2)}/${key}`;
