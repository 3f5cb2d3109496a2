#!/bin/sh
# Installs the Debian packages the distribution tests need (test/dist/):
# ShellCheck, to lint scripts/install.sh, Ruby, for "ruby -c" on the
# generated Homebrew formula, unzip, to read the Windows archive, and zsh,
# to parse the zsh completion script, and fish, to parse and run the fish
# one (four small packages without recommends).
# Idempotent: does nothing when all are on PATH. Fails loudly when they are
# missing and apt-get cannot install them.
set -eu
TOOLS="shellcheck ruby unzip zsh fish"
missing=
for tool in $TOOLS; do
  command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "tools: apt-dist:$missing missing and apt-get is not available; install them with your package manager" >&2
  exit 1
fi
SUDO=
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "tools: apt-dist: not root and no sudo; install$missing yourself" >&2
    exit 1
  fi
fi
echo "tools: apt-dist: installing$missing (apt-get)" >&2
if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq; then
  echo "tools: apt-dist: apt-get update failed" >&2
  exit 1
fi
# shellcheck disable=SC2086 # $missing is a list of package names
if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null; then
  echo "tools: apt-dist: apt-get install$missing failed" >&2
  exit 1
fi
for tool in $TOOLS; do
  command -v "$tool" >/dev/null 2>&1 || { echo "tools: apt-dist: $tool is still missing after apt-get install" >&2; exit 1; }
done
