// Checksum-database lookups of private modules (--private) are refused
// with 403: asking a database about a private path would publish its name
// (tiles name no module and pass). The go command shows the message to the
// user, which says how to tell it not to ask.

import type { Metrics } from "../../util/metrics.ts";
import { unescapePath } from "../module/path.ts";
import type { PrivateSource } from "../upstream/private.ts";
import { errorText } from "./respond.ts";

/** 403 for "<db>/lookup/<private module>@<version>", else null (the sumdb proxy answers). */
export function refusePrivateLookup(priv: PrivateSource | null, metrics: Metrics, rest: string): Response | null {
  const m = /^([^/]+)\/lookup\/(.+)@[^@/]*$/.exec(rest);
  if (!priv || !m) return null;
  let module: string;
  try {
    module = unescapePath(m[2]!);
  } catch {
    return null; // the sumdb proxy answers 400
  }
  const pattern = priv.match(module);
  if (!pattern) return null;
  metrics.inc("modproxy_private_sumdb_refused");
  return errorText(
    403,
    `gostash: ${module} is a private module (it matches ${JSON.stringify(pattern)} in --private), so its checksum is not looked up in ${m[1]}: ` +
      `set GONOSUMDB=${pattern} (or GOPRIVATE=${pattern}) for the go command`,
  );
}
