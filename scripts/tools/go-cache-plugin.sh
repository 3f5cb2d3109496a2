#!/bin/sh
# Builds tailscale/go-cache-plugin into .tools/bin: the reference gostash is
# a drop-in replacement for. test/parity.test.ts reads its --help to check
# that every flag and variable it has is accepted by gostash with the same
# meaning, test/revproxy/ runs its reverse proxy side by side with ours, and
# the benchmarks (scripts/bench/s3.ts, scripts/bench/revproxy.ts) compare
# against it. Idempotent: does nothing when the pinned version is there.
# Fails loudly otherwise.
#
# Pinned: v0.1.1, built from the Go module proxy through a throwaway go.mod
# (go-cache-plugin's go.mod has replace-free requirements, so `go build` of
# its command from a module that requires it is all it takes). GOSUMDB=off:
# the checksum database is not reachable from every build machine; the
# module proxy is.
set -eu
VERSION=v0.1.1
MODULE=github.com/tailscale/go-cache-plugin
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN="$ROOT/.tools/bin"
STAMP="$BIN/.go-cache-plugin.version"
if [ -x "$BIN/go-cache-plugin" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$VERSION" ]; then
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "tools: go-cache-plugin: the go command is required to build it" >&2
  exit 1
fi
mkdir -p "$BIN"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gostash-gcp-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
printf 'module gostash.local/gcpbuild\n\ngo 1.24\n\nrequire %s %s\n' "$MODULE" "$VERSION" >"$WORK/go.mod"
echo "tools: building $MODULE $VERSION into $BIN (takes a few minutes the first time)" >&2
if ! (cd "$WORK" && GOSUMDB=off GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local go build -o "$BIN/go-cache-plugin.tmp" "$MODULE/cmd/go-cache-plugin"); then
  echo "tools: go-cache-plugin: go build $MODULE/cmd/go-cache-plugin@$VERSION failed" >&2
  exit 1
fi
mv "$BIN/go-cache-plugin.tmp" "$BIN/go-cache-plugin"
# `version` exits 2 like every informational command of its command library: check what it prints.
if ! "$BIN/go-cache-plugin" version 2>&1 | grep -q "version $VERSION "; then
  echo "tools: go-cache-plugin: the built binary does not run or is not $VERSION" >&2
  exit 1
fi
echo "$VERSION" >"$STAMP"
