import type { FlagSpecs } from "./flags.ts";

// The caching reverse proxy of `gostash serve` (on --http, as an HTTP
// proxy: HTTP_PROXY/HTTPS_PROXY=http://HOST:PORT). --revproxy follows
// go-cache-plugin. See src/config/revproxy.ts and docs/revproxy.md.
export const revproxyFlags = {
  revproxy: {
    type: "string",
    env: ["GOCACHE_REVPROXY"],
    valueHint: "hosts",
    description:
      "Also serve --http as an HTTP proxy that caches downloads from these hosts (comma-separated, host or host:port): immutable answers on disk and in the bucket, short-lived ones in memory; CONNECT to them is answered with a certificate from gostash's CA (gostash revproxy ca)",
  },
  "revproxy-max-entry": {
    type: "size",
    default: "4GiB",
    env: ["GOSTASH_REVPROXY_MAX_ENTRY"],
    valueHint: "size",
    description: "Largest download the reverse proxy keeps; larger ones are passed through uncached (0: no limit)",
  },
  "revproxy-memory": {
    type: "size",
    default: "64MiB",
    env: ["GOSTASH_REVPROXY_MEMORY"],
    valueHint: "size",
    description: "Memory for short-lived answers (max-age under an hour); one answer takes at most an eighth of it",
  },
  "revproxy-timeout": {
    type: "duration",
    default: "30s",
    env: ["GOSTASH_REVPROXY_TIMEOUT"],
    valueHint: "duration",
    description: "Give up on an origin whose answer, or next body chunk, takes longer (502/504, or a cut download)",
  },
  "revproxy-tunnel": {
    type: "boolean",
    default: true,
    env: ["GOSTASH_REVPROXY_TUNNEL"],
    description: "Tunnel CONNECT to hosts not in --revproxy untouched, as go-cache-plugin does (--no-revproxy-tunnel: refuse them with 403)",
  },
  "revproxy-install-ca": {
    type: "boolean",
    env: ["GOSTASH_REVPROXY_INSTALL_CA"],
    description: "Add the reverse proxy's CA to the system trust store at start (needs root; go-cache-plugin always tries, gostash only when asked)",
  },
} satisfies FlagSpecs;

// `gostash revproxy ca` (src/commands/revproxy.ts).
export const revproxyCAFlags = {
  install: {
    type: "boolean",
    env: ["GOSTASH_REVPROXY_INSTALL_CA"],
    description: "Also add the CA to the system trust store (needs root)",
  },
} satisfies FlagSpecs;
