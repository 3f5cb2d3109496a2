#!/bin/sh
# Installs versitygw (an S3-compatible server with a plain-directory backend)
# into .tools/bin for the S3 tests and benchmarks. Idempotent: does nothing
# when the pinned version is already there. Fails loudly otherwise.
#
# Pinned: v1.8.0 builds with Go 1.26 from the Go module proxy (a first
# install compiles for several minutes on 2 cores; later runs are instant).
set -eu
VERSION=v1.8.0
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN="$ROOT/.tools/bin"
STAMP="$BIN/.versitygw.version"
if [ -x "$BIN/versitygw" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$VERSION" ]; then
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "tools: versitygw: the go command is required to install it" >&2
  exit 1
fi
mkdir -p "$BIN"
echo "tools: installing versitygw $VERSION into $BIN (go install; takes a few minutes the first time)" >&2
if ! GOBIN="$BIN" GOFLAGS=-buildvcs=false GOTOOLCHAIN=local go install "github.com/versity/versitygw/cmd/versitygw@$VERSION"; then
  echo "tools: versitygw: go install github.com/versity/versitygw/cmd/versitygw@$VERSION failed" >&2
  exit 1
fi
"$BIN/versitygw" --version >/dev/null 2>&1 || { echo "tools: versitygw: installed binary does not run" >&2; exit 1; }
echo "$VERSION" >"$STAMP"
