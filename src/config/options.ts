// Every flag gostash takes, grouped by what it configures. Names and
// environment variables follow tailscale/go-cache-plugin wherever the
// meaning is the same, so its command lines keep working unchanged.

import type { FlagSpecs } from "./flags.ts";

export const logFlags = {
  verbose: { type: "boolean", alias: ["v"], env: ["GOCACHE_VERBOSE"], description: "Log what happens (to stderr)" },
  debug: {
    type: "mask",
    env: ["GOCACHE_DEBUG"],
    valueHint: "mask",
    description:
      "Log every request to stderr, as a bit mask like go-cache-plugin's: 1 build cache, 2 module proxy, 4 reverse proxy (7 or true: all); any bit implies --verbose",
  },
  metrics: {
    type: "boolean",
    env: ["GOCACHE_METRICS"],
    description: "Print a summary of gets, hits, misses, puts, bytes and time to stderr at exit",
  },
} satisfies FlagSpecs;

export const localFlags = {
  "cache-dir": {
    type: "string",
    env: ["GOCACHE_DIR"],
    valueHint: "dir",
    defaultText: "$GOCACHE, else Go's default location",
    description: "Local cache directory, in Go's own cache format",
  },
  "max-size": {
    type: "size",
    env: ["GOSTASH_MAX_SIZE"],
    valueHint: "size",
    description: "Cap on the local cache size, e.g. 20GiB; least recently used entries go first (unset: no cap, like Go)",
  },
  expiry: {
    type: "duration", default: "5d",
    env: ["GOCACHE_EXPIRY"],
    valueHint: "duration",
    description: "Trim local entries unused for this long (5d is what Go does)",
  },
} satisfies FlagSpecs;

export const s3Flags = {
  bucket: { type: "string", env: ["GOCACHE_S3_BUCKET"], valueHint: "name", description: "S3 bucket for the shared tier (none: local disk only)" },
  region: { type: "string", env: ["GOCACHE_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"], defaultText: "the bucket's, detected", description: "S3 region" },
  prefix: { type: "string", env: ["GOCACHE_KEY_PREFIX"], description: "Key prefix for objects in the bucket" },
  "s3-endpoint-url": {
    type: "string",
    env: ["GOCACHE_S3_ENDPOINT_URL"],
    valueHint: "url",
    description: "S3-compatible endpoint (R2, MinIO, versitygw, ...)",
  },
  "s3-path-style": { type: "boolean", env: ["GOCACHE_S3_PATH_STYLE"], description: "Use path-style S3 URLs" },
  "min-upload-size": {
    type: "size",
    env: ["GOCACHE_MIN_SIZE"],
    valueHint: "size",
    description: "Outputs smaller than this stay local only",
  },
  "upload-concurrency": {
    type: "count", default: "8",
    alias: ["u"],
    env: ["GOCACHE_S3_CONCURRENCY"],
    valueHint: "n",
    description: "Concurrent background uploads",
  },
  concurrency: { type: "count", default: "32", alias: ["c"], env: ["GOCACHE_CONCURRENCY"], valueHint: "n", description: "Concurrent S3 downloads" },
  "read-only": { type: "boolean", env: ["GOSTASH_READ_ONLY"], description: "Read from S3 but never write to it (untrusted builds)" },
  "flush-timeout": {
    type: "duration", default: "30s",
    env: ["GOSTASH_FLUSH_TIMEOUT"],
    valueHint: "duration",
    description: "How long close waits for pending uploads",
  },
  "s3-timeout": {
    type: "duration", default: "5s",
    env: ["GOSTASH_S3_TIMEOUT"],
    valueHint: "duration",
    description: "Give up on an S3 request (or a stalled download) after this long; it becomes a miss",
  },
  compress: { type: "boolean", default: true, env: ["GOSTASH_COMPRESS"], description: "zstd-compress objects in S3 (--no-compress to turn off)" },
  prefetch: {
    type: "boolean",
    default: true,
    env: ["GOSTASH_PREFETCH"],
    description:
      "Packs: on a local miss, stream what earlier go commands packed for this toolchain and module, a few GETs in all; at its end each go command uploads one pack of what it used that no pack holds (--no-prefetch to turn off; see docs/packs.md)",
  },
  "toolchain-marks": {
    type: "boolean",
    default: true,
    env: ["GOSTASH_TOOLCHAIN_MARKS"],
    description:
      "When the bucket has no mark for the go command's version and platform (toolchains/ in it; through a daemon, connect says which they are), its local misses are misses without a GET each; the first upload writes the mark (--no-toolchain-marks when other tools write outputs into the same bucket; see docs/toolchain-marks.md)",
  },
  "max-pack-size": {
    type: "size", default: "1GiB",
    env: ["GOSTASH_MAX_PACK_SIZE"],
    valueHint: "size",
    description: "Bytes of outputs in one pack at most (before compression); outputs beyond it stay single objects (0: no limit)",
  },
  "max-put-size": {
    type: "size", default: "1GiB",
    env: ["GOSTASH_MAX_PUT_SIZE"],
    valueHint: "size",
    description: "Outputs larger than this are never uploaded to the bucket; they stay on the local disk and the go command still gets them (0: no limit)",
  },
  "upload-queue-bytes": {
    type: "size", default: "2GiB",
    env: ["GOSTASH_UPLOAD_QUEUE_BYTES"],
    valueHint: "size",
    description: "Bytes of outputs waiting for or in upload; beyond it new uploads are dropped and stay local, never blocking a build (0: no limit)",
  },
  "request-timeout": {
    type: "duration", default: "30s",
    env: ["GOSTASH_REQUEST_TIMEOUT"],
    valueHint: "duration",
    description: "Answer a get the shared tier has not served within this long as a miss; the download goes on in the background (0: no limit)",
  },
} satisfies FlagSpecs;

// `gostash serve` (the daemon). Names follow go-cache-plugin's serve command.
export const serveFlags = {
  plugin: {
    type: "string",
    env: ["GOCACHE_PLUGIN"],
    valueHint: "port|socket",
    description: "Serve the GOCACHEPROG protocol on this port of 127.0.0.1, or on this Unix socket path (created owner-only)",
  },
  http: {
    type: "string",
    env: ["GOCACHE_HTTP"],
    valueHint: "[host]:port",
    description: "Serve /metrics, /debug/vars and /healthz over HTTP here; a bare port or :port binds 127.0.0.1",
  },
  "shutdown-timeout": {
    type: "duration", default: "30s",
    env: ["GOSTASH_SHUTDOWN_TIMEOUT"],
    valueHint: "duration",
    description: "On SIGINT/SIGTERM, how long to wait for connected go commands to finish before closing them",
  },
  token: {
    type: "string",
    env: ["GOSTASH_TOKEN"],
    valueHint: "token",
    description: "Require this shared token from connect and HTTP clients (read-write); /healthz stays open (prefer the env var: flags show in ps)",
  },
  "read-token": {
    type: "string",
    env: ["GOSTASH_READ_TOKEN"],
    valueHint: "token",
    description: "A second token that may only read: its connect clients get hits but never change the shared cache; HTTP GET/HEAD only",
  },
  "tls-cert": {
    type: "string",
    env: ["GOSTASH_TLS_CERT"],
    valueHint: "file",
    description: "Serve --http over TLS with this PEM certificate (chain); needs --tls-key",
  },
  "tls-key": {
    type: "string",
    env: ["GOSTASH_TLS_KEY"],
    valueHint: "file",
    description: "PEM private key for --tls-cert",
  },
} satisfies FlagSpecs;

// Resource limits of `gostash serve`. Each refusal names its flag; each is
// counted (see src/daemon/server.ts and src/http/limits.ts).
export const limitFlags = {
  "max-connections": {
    type: "count", default: "512",
    env: ["GOSTASH_MAX_CONNECTIONS"],
    valueHint: "n",
    description: "Plugin connections open at once; more are refused and their go command builds from its local cache (0: no limit)",
  },
  "max-inflight": {
    type: "count", default: "256",
    env: ["GOSTASH_MAX_INFLIGHT"],
    valueHint: "n",
    description: "Requests of one plugin connection being answered at once; beyond it that connection is not read until answers go out (0: no limit)",
  },
  "idle-timeout": {
    type: "duration", default: "10m",
    env: ["GOSTASH_IDLE_TIMEOUT"],
    valueHint: "duration",
    description: "Close plugin connections with no request for this long; connect dials again when its go command needs the daemon (0: never)",
  },
  "max-http-requests": {
    type: "count", default: "256",
    env: ["GOSTASH_MAX_HTTP_REQUESTS"],
    valueHint: "n",
    description: "HTTP requests handled at once; more get 503 with Retry-After, except /healthz and /metrics (0: no limit)",
  },
  "max-http-body": {
    type: "size", default: "1MiB",
    env: ["GOSTASH_MAX_HTTP_BODY"],
    valueHint: "size",
    description: "Largest HTTP request body; a larger one gets 413",
  },
  "http-idle-timeout": {
    type: "duration", default: "2m",
    env: ["GOSTASH_HTTP_IDLE_TIMEOUT"],
    valueHint: "duration",
    description: "Close HTTP connections idle this long: no request, or a response the client stopped reading; a request being handled is never cut (at most 255s; 0: never)",
  },
} satisfies FlagSpecs;

// `gostash connect PORT|SOCKET` (the bridge `go` runs as GOCACHEPROG). The
// local flags only matter when the daemon cannot be reached and the bridge
// serves the build itself from the local disk cache.
export const connectFlags = {
  plugin: {
    type: "string",
    env: ["GOCACHE_PLUGIN"],
    valueHint: "port|socket",
    description: "Daemon address when none is given as an argument: a port on 127.0.0.1 or a Unix socket path",
  },
  "dial-timeout": {
    type: "duration", default: "2s",
    env: ["GOSTASH_DIAL_TIMEOUT"],
    valueHint: "duration",
    description: "Give up reaching the daemon after this long (connecting, and its first line) and serve from the local cache",
  },
  "answer-timeout": {
    type: "duration", default: "60s",
    env: ["GOSTASH_ANSWER_TIMEOUT"],
    valueHint: "duration",
    description: "A daemon that owes answers and says nothing at all for this long is taken for stuck: the local cache serves the rest of the build (0: wait forever)",
  },
  token: {
    type: "string",
    env: ["GOSTASH_TOKEN"],
    valueHint: "token",
    description: "Token the daemon requires (serve --token or --read-token); a refused token is reported once and the build uses the local cache",
  },
  "local-hits": {
    type: "boolean", default: true,
    env: ["GOSTASH_LOCAL_HITS"],
    description: "When the daemon's cache directory is on this machine, answer hits from it here, without a round trip (the daemon still counts them; --no-local-hits to turn off)",
  },
} satisfies FlagSpecs;

// go-cache-plugin's global flags apply to every command, connect included,
// so one set of flags or variables can serve `go-cache-plugin`, `serve` and
// `connect` alike. gostash's connect has no use for the bucket settings (the
// daemon owns the bucket) but takes them, so such command lines keep
// working; they are ignored there.
const BUCKET_FLAGS_IGNORED_BY_CONNECT = [
  "bucket",
  "region",
  "prefix",
  "s3-endpoint-url",
  "s3-path-style",
  "min-upload-size",
  "upload-concurrency",
  "concurrency",
] as const;

export const connectIgnoredFlags: FlagSpecs = Object.fromEntries(
  BUCKET_FLAGS_IGNORED_BY_CONNECT.map((name) => [name, { ...s3Flags[name], description: `Ignored by connect (the daemon owns the bucket); taken for go-cache-plugin's command lines` }]),
);

// The caching module proxy and checksum-database proxy of `gostash serve`
// (mounted at /mod on --http). --modproxy and --sumdb follow
// go-cache-plugin. See src/modproxy/config.ts for how they are read.
export const modproxyFlags = {
  modproxy: {
    type: "boolean",
    env: ["GOCACHE_MODPROXY"],
    description: "Serve a caching Go module proxy at /mod on --http (GOPROXY=http://HOST:PORT/mod)",
  },
  upstream: {
    type: "string",
    env: ["GOSTASH_UPSTREAM"],
    valueHint: "list",
    default: "https://proxy.golang.org",
    description: "Upstream module proxies, GOPROXY-style: \",\" falls through on 404/410, \"|\" on any error; file:// URLs work",
  },
  rules: {
    type: "string",
    env: ["GOSTASH_RULES"],
    valueHint: "file",
    description:
      "Routing rules (JSON, see docs/modproxy-rules.md): per module path glob, exclude, allowed versions, another upstream, or a redirect; reloaded when it changes",
  },
  sumdb: {
    type: "string",
    env: ["GOCACHE_SUMDB"],
    valueHint: "names",
    default: "sum.golang.org",
    description:
      "Checksum databases to proxy at /mod/sumdb/NAME, comma-separated, each NAME or NAME=URL (off to disable)",
  },
  "modproxy-dir": {
    type: "string",
    env: ["GOSTASH_MODPROXY_DIR"],
    valueHint: "dir",
    description: "Module cache directory, in the GOPROXY layout (usable as GOPROXY=file://DIR)",
    defaultText: "CACHE_DIR/modproxy",
  },
  "modproxy-list-ttl": {
    type: "duration", default: "1m",
    env: ["GOSTASH_MODPROXY_LIST_TTL"],
    valueHint: "duration",
    description: "How long list, @latest, version queries, sumdb latest and partial tiles are fresh",
  },
  "modproxy-refresh-window": {
    type: "duration", default: "1h",
    env: ["GOSTASH_MODPROXY_REFRESH_WINDOW"],
    valueHint: "duration",
    description: "After the list ttl, serve the old answer at once and refresh it in the background for this long (0 to always wait)",
  },
  "modproxy-not-found-ttl": {
    type: "duration", default: "1m",
    env: ["GOSTASH_MODPROXY_NOT_FOUND_TTL"],
    valueHint: "duration",
    description: "How long a 404/410 from the upstream is remembered",
  },
  "upstream-timeout": {
    type: "duration", default: "30s",
    env: ["GOSTASH_UPSTREAM_TIMEOUT"],
    valueHint: "duration",
    description: "Give up on an upstream request whose answer, or next body chunk, takes longer",
  },
  "upstream-retries": {
    type: "count", default: "2",
    env: ["GOSTASH_UPSTREAM_RETRIES"],
    valueHint: "n",
    description: "Retries of an upstream request after a 429, 5xx or network error",
  },
  private: {
    type: "string",
    env: ["GOSTASH_PRIVATE", "GOPRIVATE"],
    valueHint: "globs",
    description:
      "Module path globs (GOPRIVATE syntax, comma-separated) fetched directly from version control by the go command, never from --upstream; their checksum-database lookups get 403 (mod import: never looked up, nor paths in GONOSUMDB or GOPRIVATE)",
    defaultText: "$GOPRIVATE when only that is set",
  },
  "private-modcache": {
    type: "string",
    env: ["GOSTASH_PRIVATE_MODCACHE"],
    valueHint: "dir",
    description: "GOMODCACHE of the go commands that fetch private modules, reused so repositories are cloned once",
    defaultText: "MODPROXY_DIR/../private-gomodcache",
  },
  "private-concurrency": {
    type: "count", default: "4",
    env: ["GOSTASH_PRIVATE_CONCURRENCY"],
    valueHint: "n",
    description: "How many go commands may fetch private modules at once",
  },
  "private-timeout": {
    type: "duration", default: "2m",
    env: ["GOSTASH_PRIVATE_TIMEOUT"],
    valueHint: "duration",
    description: "Kill a go command fetching a private module (with its git and ssh children) after this long; the client gets 410",
  },
  offline: {
    type: "boolean",
    env: ["GOSTASH_OFFLINE"],
    description: "Module proxy: never contact an upstream or checksum database; answer from the cache (and the S3 bucket) only, 404 otherwise",
  },
} satisfies FlagSpecs;

// Groups kept in their own files, re-exported: value-flags.ts reads all from here.
export { revproxyCAFlags, revproxyFlags } from "./revproxy-flags.ts";
export { ciFlags } from "./ci-flags.ts";
export { modFlags } from "./mod-flags.ts";
