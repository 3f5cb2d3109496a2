#!/usr/bin/env bash
# Installs the reference GOCACHEPROG plugins the benchmarks compare gostash
# with, into <repo>/.tools/bin (git-ignored). Idempotent: a pinned tool that
# is already installed at its pinned version is left alone. Only the
# scripts/bench/ scripts call this; the tests never need it.
#
#   diskcache  creachadair/gocache's cmd/diskcache, the reference local-disk
#              plugin (Go). Invoked as: diskcache --cache-dir DIR
#   go-cacher  bradfitz/go-tool-cache's cmd/go-cacher, the original local-disk
#              GOCACHEPROG plugin (Go, one goroutine per request).
#              Invoked as: go-cacher --cache-dir DIR
#   floor-plugin scripts/bench/floor-plugin, built from this repository: the
#              least a plugin can do (read Go's entry, answer), to show what
#              the protocol round trip alone costs. Reads $GOCACHE.
#   floor-bridge scripts/bench/floor-bridge, built from this repository: the
#              least `gostash connect` can do (copy bytes to and from the
#              daemon), to show what the extra process alone costs.
#
# The Go module proxy reachable from some machines refuses
# github.com/creachadair/gocache ("403 This module version is not
# available"). A refusal is final, so it is remembered in
# .tools/diskcache.refused and not asked again (delete that file to retry);
# the benchmarks then use go-cacher as the Go reference plugin and say so.
#
# Prints nothing on stdout except, at the end, one line per available tool:
#   <name>=<absolute path>
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tools="$root/.tools"
bin="$tools/bin"
mkdir -p "$bin"

DISKCACHE_MOD="github.com/creachadair/gocache/cmd/diskcache"
DISKCACHE_VERSION="v0.0.0-20260803044833-060af7b2d093"
GOCACHER_MOD="github.com/bradfitz/go-tool-cache/cmd/go-cacher"
GOCACHER_VERSION="v0.0.0-20260722201841-0bb331e19f64"

# go install in a clean, predictable environment: no GOCACHEPROG from the
# user's go env (it could be gostash itself), the local toolchain, modules on.
goinstall() {
  env -u GOCACHEPROG GOENV=off GOBIN="$bin" GOTOOLCHAIN=local GOFLAGS=-mod=mod GOTELEMETRY=off CGO_ENABLED=0 \
    go install "$1@$2"
}

# install NAME MODULE VERSION: skip when the stamp says this version is there.
install() {
  local name="$1" mod="$2" version="$3"
  local stamp="$bin/.$name.version"
  if [[ -x "$bin/$name" && -f "$stamp" && "$(cat "$stamp")" == "$version" ]]; then
    return 0
  fi
  if [[ -f "$tools/$name.refused" && "$(head -n1 "$tools/$name.refused")" == "$version" ]]; then
    return 0
  fi
  echo "tools.sh: installing $name ($mod@$version)" >&2
  local log
  if log="$(goinstall "$mod" "$version" 2>&1)"; then
    echo "$version" >"$stamp"
    rm -f "$tools/$name.refused"
  else
    echo "$log" >&2
    if grep -qE '(403|404|410) (Forbidden|Not Found|Gone)|not available' <<<"$log"; then
      # The registry said no: remember it, do not ask again.
      { echo "$version"; echo "$log"; } >"$tools/$name.refused"
      echo "tools.sh: $name is not available from the module proxy here; skipping it" >&2
    else
      echo "tools.sh: installing $name failed (not a refusal; will retry next time)" >&2
    fi
  fi
}

install diskcache "$DISKCACHE_MOD" "$DISKCACHE_VERSION"
install go-cacher "$GOCACHER_MOD" "$GOCACHER_VERSION"

# Built from source in this repository whenever its source is newer.
for floor in floor-plugin floor-bridge; do
  floor_src="$root/scripts/bench/$floor"
  if [[ ! -x "$bin/$floor" || -n "$(find "$floor_src" -newer "$bin/$floor" -type f)" ]]; then
    echo "tools.sh: building $floor" >&2
    (cd "$floor_src" && env -u GOCACHEPROG GOENV=off GOTOOLCHAIN=local GOFLAGS= GOTELEMETRY=off CGO_ENABLED=0 \
      go build -o "$bin/$floor" .) >&2
  fi
done

for name in diskcache go-cacher; do
  if [[ -x "$bin/$name" && -f "$bin/.$name.version" ]]; then
    echo "$name=$bin/$name"
  fi
done
[[ -x "$bin/floor-plugin" ]] && echo "floor-plugin=$bin/floor-plugin"
[[ -x "$bin/floor-bridge" ]] && echo "floor-bridge=$bin/floor-bridge"
exit 0
