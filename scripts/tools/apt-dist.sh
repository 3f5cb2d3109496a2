#!/bin/sh
# Installs the Debian packages the distribution tests need (test/dist/):
# ShellCheck, to lint scripts/install.sh, Ruby, for "ruby -c" on the
# generated Homebrew formula, and unzip, to read the Windows archive.
# Idempotent: does nothing when all are on PATH. Fails
# loudly when they are missing and apt-get cannot install them.
set -eu
if command -v shellcheck >/dev/null 2>&1 && command -v ruby >/dev/null 2>&1 && command -v unzip >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "tools: apt-dist: shellcheck, ruby and unzip are required and apt-get is not available; install them with your package manager" >&2
  exit 1
fi
SUDO=
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "tools: apt-dist: not root and no sudo; install shellcheck, ruby and unzip yourself" >&2
    exit 1
  fi
fi
echo "tools: apt-dist: installing shellcheck, ruby and unzip (apt-get)" >&2
if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq; then
  echo "tools: apt-dist: apt-get update failed" >&2
  exit 1
fi
if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck ruby unzip >/dev/null; then
  echo "tools: apt-dist: apt-get install shellcheck ruby unzip failed" >&2
  exit 1
fi
for tool in shellcheck ruby unzip; do
  command -v "$tool" >/dev/null 2>&1 || { echo "tools: apt-dist: $tool is still missing after apt-get install" >&2; exit 1; }
done
