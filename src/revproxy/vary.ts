// Vary (RFC 9111 4.1): a stored answer that names request headers in its
// Vary may serve only requests whose values of those headers are the ones
// of the request it was fetched for. Those values are stored with the
// entry (meta `varying`, memory entries alike); a request whose values
// differ is a miss, fetched from the origin, and never joins a fill whose
// answer varies on values it does not share. `Vary: *` is never stored
// (policy.ts). `Vary: Accept-Encoding`, common on CDNs, follows the same
// rule: the values are compared, the answer stays cacheable.

/** The request headers named in a Vary value, lower case ("*" kept as it is). */
export function varyNames(vary: string | null): string[] {
  if (!vary) return [];
  return vary
    .split(",")
    .map((n) => n.trim().toLowerCase())
    .filter(Boolean);
}

/** The values, in `req`, of the headers this answer varies on (absent ones left out). */
export function varyingValues(vary: string | null, req: Request): [string, string][] {
  const out: [string, string][] = [];
  for (const name of varyNames(vary)) {
    const v = req.headers.get(name);
    if (v !== null) out.push([name, v]);
  }
  return out;
}

/** May an answer stored with these headers, fetched with `recorded` values, serve `req`? */
export function varyMatches(stored: [string, string][], recorded: [string, string][] | undefined, req: Request): boolean {
  const vary = stored.find(([k]) => k === "vary")?.[1] ?? null;
  for (const name of varyNames(vary)) {
    if (name === "*") return false;
    const was = recorded?.find(([k]) => k === name)?.[1] ?? null;
    if (was !== req.headers.get(name)) return false;
  }
  return true;
}
