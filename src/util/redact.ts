// Secrets kept out of what gostash shows: the status page, /debug/vars,
// logs and hints. A URL may carry credentials in its userinfo
// (https://user:pass@proxy, http://KEY:SECRET@minio): only the password
// (or a lone token) is hidden, so the URL still says where it points.

/** "https://user:pass@host/x" -> "https://user:***@host/x", "https://token@host" -> "https://***@host". */
export function hideUrlPasswords(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)([^/@\s]+)@/gi, (_m, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(":");
    return `${scheme}${colon < 0 ? "***" : `${userinfo.slice(0, colon)}:***`}@`;
  });
}
