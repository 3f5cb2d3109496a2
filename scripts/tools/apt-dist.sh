#!/bin/sh
# Installs the Debian packages the distribution tests need (test/dist/):
# ShellCheck, to lint scripts/install.sh; Ruby, for "ruby -c" on the
# generated Homebrew formula; unzip, to read the Windows archive; zsh and
# fish, to parse the completion scripts; qemu-user and Debian's arm64 glibc
# for cross builds (libc6-arm64-cross: no multiarch set-up needed), to run
# the linux-arm64 binary; xz, which writes and reads the .tar.xz release
# archives; script (bsdutils), for the pseudo-terminal tests of --help;
# Chromium, for the status page's browser test (test/status/page-browser.test.ts
# drives it headless with puppeteer-core; nothing downloads a browser of its
# own). About 15 MB of packages without recommends, and about 400 MB
# installed for Chromium.
# Idempotent: does nothing when all are there. Fails loudly when they are
# missing and apt-get cannot install them.
set -eu
# Each entry: <file or command that must exist>:<Debian package providing it>
NEEDS="shellcheck:shellcheck ruby:ruby unzip:unzip zsh:zsh fish:fish qemu-aarch64:qemu-user xz:xz-utils script:bsdutils
/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1:libc6-arm64-cross /usr/bin/chromium:chromium"

have() {
  case "$1" in
    /*) [ -e "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

missing=
for need in $NEEDS; do
  have "${need%%:*}" || missing="$missing ${need##*:}"
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
for need in $NEEDS; do
  have "${need%%:*}" || { echo "tools: apt-dist: ${need%%:*} is still missing after apt-get install ${need##*:}" >&2; exit 1; }
done
