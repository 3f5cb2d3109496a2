#!/bin/sh
# Installs actionlint (the GitHub Actions workflow checker) into .tools/bin
# for test/action: it checks .github/workflows/*.yml, the workflows in
# docs/ci.md, and through `uses: ./` the inputs of action.yml. Idempotent:
# does nothing when the pinned version is already there. Fails loudly
# otherwise.
set -eu
VERSION=v1.7.12
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN="$ROOT/.tools/bin"
STAMP="$BIN/.actionlint.version"
if [ -x "$BIN/actionlint" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$VERSION" ]; then
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "tools: actionlint: the go command is required to install it" >&2
  exit 1
fi
mkdir -p "$BIN"
echo "tools: installing actionlint $VERSION into $BIN (go install)" >&2
if ! GOBIN="$BIN" GOFLAGS=-buildvcs=false GOTOOLCHAIN=local go install "github.com/rhysd/actionlint/cmd/actionlint@$VERSION"; then
  echo "tools: actionlint: go install github.com/rhysd/actionlint/cmd/actionlint@$VERSION failed" >&2
  exit 1
fi
"$BIN/actionlint" -version >/dev/null 2>&1 || { echo "tools: actionlint: installed binary does not run" >&2; exit 1; }
echo "$VERSION" >"$STAMP"
