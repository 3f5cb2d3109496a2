#!/bin/sh
# gostash installer: downloads the release archive for this machine, checks
# it against SHA256SUMS, and installs the binary.
#
#   curl -fsSL https://github.com/gostash/gostash/releases/latest/download/install.sh | sh
#   curl -fsSL .../install.sh | sh -s -- --version 0.2.0 --prefix /usr/local
#
# Options (each also has an environment variable):
#   --version V      release to install, e.g. 0.2.0 or v0.2.0   GOSTASH_VERSION (default: latest)
#   --prefix DIR     install DIR/bin/gostash                     GOSTASH_INSTALL (default: ~/.local)
#   --url URL        directory holding SHA256SUMS and the archives (mirrors, tests);
#                    any scheme is accepted here                GOSTASH_DOWNLOAD_URL
#   --repo O/N       GitHub repository of the releases           GOSTASH_REPO (default: gostash/gostash)
#   --target T       skip detection: linux-x64, linux-arm64[-musl], darwin-arm64, ...  GOSTASH_TARGET
#   -y, --yes        never ask (also when CI is set, or without a terminal)
#   --print-target   print the detected target and exit (no network)
#   --dry-run        print the archive URL that would be installed and exit
#
# Archives: the .tar.xz (about 28% smaller) when SHA256SUMS lists one and
# this machine can unpack it (an xz command, or a tar built with liblzma, as
# macOS's is); the .tar.gz otherwise (older releases, no xz); .zip on Windows.
#
# Safety: everything runs inside main(), called on the last line, so a cut-off
# download runs nothing. The archive is verified against SHA256SUMS before it
# is unpacked; on any mismatch nothing is installed. Without --url only HTTPS
# is used, redirects included. GOSTASH_UNAME and GOSTASH_LIBC (glibc|musl)
# override detection (for tests).

gostash_say() {
  printf '%s\n' "$*" >&2
}

gostash_die() {
  printf 'gostash-install: error: %s\n' "$*" >&2
  exit 1
}

gostash_has() {
  command -v "$1" >/dev/null 2>&1
}

gostash_uname() {
  ${GOSTASH_UNAME:-uname} "$@"
}

gostash_usage() {
  cat >&2 <<'EOF'
Install gostash: downloads the release for this machine, verifies it against
SHA256SUMS and installs it into PREFIX/bin.

usage: install.sh [options]
  --version V      release to install (default: latest)        [GOSTASH_VERSION]
  --prefix DIR     install into DIR/bin (default: ~/.local)    [GOSTASH_INSTALL]
  --url URL        directory with SHA256SUMS and the archives  [GOSTASH_DOWNLOAD_URL]
  --repo OWNER/N   GitHub repository of the releases           [GOSTASH_REPO]
  --target T       skip detection (linux-arm64-musl, darwin-arm64, ...) [GOSTASH_TARGET]
  -y, --yes        do not ask (also implied by CI=... or no terminal)
  --print-target   print the detected target and exit
  --dry-run        print the URL of the archive that would be installed and exit
EOF
}

# Sets gostash_target, gostash_ext, gostash_exe.
gostash_detect() {
  os_raw=$(gostash_uname -s 2>/dev/null) || gostash_die "uname -s failed"
  arch_raw=$(gostash_uname -m 2>/dev/null) || gostash_die "uname -m failed"
  case "$os_raw" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    MINGW* | MSYS* | CYGWIN* | Windows_NT) os=windows ;;
    *) gostash_die "unsupported operating system: $os_raw (releases exist for Linux, macOS and Windows)" ;;
  esac
  case "$arch_raw" in
    x86_64 | amd64 | x64) arch=x64 ;;
    aarch64 | arm64 | armv8l | armv8b | aarch64_be) arch=arm64 ;;
    *) gostash_die "unsupported architecture: $arch_raw (releases exist for x86_64 and arm64)" ;;
  esac
  if [ "$os" = darwin ] && [ "$arch" = x64 ]; then
    # A shell running under Rosetta 2 sees x86_64; the native arm64 build is
    # the one to install on Apple silicon.
    if [ "$(sysctl -n sysctl.proc_translated 2>/dev/null)" = 1 ] ||
      [ "$(sysctl -n hw.optional.arm64 2>/dev/null)" = 1 ]; then
      arch=arm64
    fi
  fi
  if [ "$os" = windows ]; then
    arch=x64 # Windows on Arm runs the x64 build
  fi
  gostash_target="$os-$arch"
  if [ "$os" = linux ]; then
    libc="${GOSTASH_LIBC:-}"
    if [ -z "$libc" ]; then
      ldd_out=$(ldd --version 2>&1) || true
      case "$ldd_out" in
        *musl*) libc=musl ;;
        *GLIBC* | *"GNU libc"* | *"GNU C Library"*) libc=glibc ;;
        *)
          libc=glibc
          for f in /lib/ld-musl-*; do
            [ -e "$f" ] && libc=musl
          done
          ;;
      esac
    fi
    case "$libc" in
      musl) gostash_target="$gostash_target-musl" ;;
      glibc | gnu) ;;
      *) gostash_die "GOSTASH_LIBC must be glibc or musl, not $libc" ;;
    esac
  fi
  gostash_set_ext
}

gostash_set_ext() {
  case "$gostash_target" in
    windows-*) gostash_ext=zip gostash_exe=.exe ;;
    *) gostash_ext=tar.gz gostash_exe= ;;
  esac
}

# Can this machine unpack a .tar.xz? An xz command, or a tar that links
# liblzma (bsdtar: macOS, FreeBSD).
gostash_can_xz() {
  gostash_has xz && return 0
  case "$(tar --version 2>/dev/null)" in
    *liblzma*) return 0 ;;
  esac
  return 1
}

# gostash_find_archive SUFFIX: sets match to "<sha256> <name>" of the one
# archive in SHA256SUMS ending in SUFFIX (exactly $want_prefix$SUFFIX when a
# version is pinned); empty when there is none.
gostash_find_archive() {
  match=$(awk -v suffix="$1" -v want="${want_prefix:+$want_prefix$1}" '
    {
      n = $2; sub(/^\*/, "", n)
      if (want != "" ? n == want : (n ~ /^gostash-/ && length(n) > length(suffix) && substr(n, length(n) - length(suffix) + 1) == suffix))
        print $1, n
    }' "$tmp/SHA256SUMS")
}

# gostash_fetch URL FILE
gostash_fetch() {
  if gostash_has curl; then
    if [ "$https_only" = 1 ]; then
      curl --proto '=https' --tlsv1.2 -fsSL --retry 3 --connect-timeout 30 -o "$2" "$1"
    else
      curl -fsSL --retry 3 --connect-timeout 30 -o "$2" "$1"
    fi
  elif gostash_has wget; then
    if [ "$https_only" = 1 ] && wget --help 2>&1 | grep -q -- --https-only; then
      wget -q --https-only -O "$2" "$1"
    else
      wget -q -O "$2" "$1"
    fi
  else
    gostash_die "curl or wget is required"
  fi
}

gostash_sha256() {
  if gostash_has sha256sum; then
    sha256sum "$1" | awk '{print $1}'
  elif gostash_has shasum; then
    shasum -a 256 "$1" | awk '{print $1}'
  elif gostash_has openssl; then
    openssl dgst -sha256 -r "$1" | awk '{print $1}'
  else
    gostash_die "no SHA-256 tool found (sha256sum, shasum or openssl); refusing to install unverified"
  fi
}

gostash_file_version() {
  printf '%s' "${1#v}" | tr -c 'A-Za-z0-9._-' '-'
}

main() {
  version="${GOSTASH_VERSION:-latest}"
  prefix="${GOSTASH_INSTALL:-}"
  if [ -z "$prefix" ] && [ -n "${HOME:-}" ]; then
    prefix="$HOME/.local"
  fi
  base_url="${GOSTASH_DOWNLOAD_URL:-}"
  repo="${GOSTASH_REPO:-gostash/gostash}"
  gostash_target="${GOSTASH_TARGET:-}"
  yes=0
  mode=install
  while [ $# -gt 0 ]; do
    opt="$1"
    case "$opt" in
      --*=*) val="${opt#*=}" opt="${opt%%=*}" has_val=1 ;;
      *) val="${2:-}" has_val=0 ;;
    esac
    case "$opt" in
      --version | --prefix | --url | --base-url | --repo | --target)
        if [ "$has_val" = 0 ]; then
          [ $# -ge 2 ] || gostash_die "$opt needs a value"
          shift
        fi
        case "$opt" in
          --version) version="$val" ;;
          --prefix) prefix="$val" ;;
          --url | --base-url) base_url="$val" ;;
          --repo) repo="$val" ;;
          --target) gostash_target="$val" ;;
        esac
        ;;
      -y | --yes) yes=1 ;;
      --print-target) mode=print-target ;;
      --dry-run) mode=dry-run ;;
      -h | --help)
        gostash_usage
        return 0
        ;;
      *) gostash_die "unknown option: $1 (see --help)" ;;
    esac
    shift
  done

  target_given=0
  if [ -n "$gostash_target" ]; then
    target_given=1
    case "$gostash_target" in
      linux-x64 | linux-arm64 | linux-x64-musl | linux-arm64-musl | darwin-x64 | darwin-arm64 | windows-x64) ;;
      *) gostash_die "unknown target: $gostash_target" ;;
    esac
    gostash_set_ext
  else
    gostash_detect
  fi
  if [ "$mode" = print-target ]; then
    printf '%s\n' "$gostash_target"
    return 0
  fi

  [ -n "$version" ] || version=latest
  if [ -n "$base_url" ]; then
    url="${base_url%/}"
    https_only=0
  else
    case "$repo" in
      */*) ;;
      *) gostash_die "--repo must look like owner/name, not $repo" ;;
    esac
    https_only=1
    if [ "$version" = latest ]; then
      url="https://github.com/$repo/releases/latest/download"
    else
      url="https://github.com/$repo/releases/download/v${version#v}"
    fi
  fi
  [ -n "$prefix" ] || gostash_die "no install prefix: set HOME, GOSTASH_INSTALL or --prefix"
  bindir="${prefix%/}/bin"
  dest="$bindir/gostash$gostash_exe"

  tmp=$(mktemp -d 2>/dev/null || mktemp -d -t gostash) || gostash_die "cannot create a temporary directory"
  # shellcheck disable=SC2064 # expand $tmp now: it is fixed from here on
  trap "rm -rf '$tmp'" EXIT
  trap 'exit 130' INT TERM

  gostash_fetch "$url/SHA256SUMS" "$tmp/SHA256SUMS" || gostash_die "cannot download $url/SHA256SUMS"
  suffix="-$gostash_target.$gostash_ext"
  if [ "$version" = latest ]; then
    want_prefix=
  else
    want_prefix="gostash-$(gostash_file_version "$version")"
  fi
  # "<sha256>  <name>" (or "<sha256> *<name>"); exactly one line must match.
  match=
  if [ "$gostash_ext" = tar.gz ] && gostash_can_xz; then
    gostash_find_archive "-$gostash_target.tar.xz"
    [ -n "$match" ] && suffix="-$gostash_target.tar.xz"
  fi
  [ -n "$match" ] || gostash_find_archive "$suffix"
  [ -n "$match" ] || gostash_die "no ${want_prefix:-gostash-*}$suffix in $url/SHA256SUMS (is version '$version' released for $gostash_target?)"
  [ "$(printf '%s\n' "$match" | wc -l | tr -d ' ')" = 1 ] || gostash_die "SHA256SUMS lists more than one archive for $gostash_target"
  want_sum=$(printf '%s' "${match%% *}" | tr 'A-F' 'a-f')
  archive="${match#* }"
  case "$want_sum" in
    *[!0-9a-f]*) gostash_die "malformed checksum for $archive in SHA256SUMS" ;;
  esac
  [ ${#want_sum} -eq 64 ] || gostash_die "malformed checksum for $archive in SHA256SUMS"
  case "$archive" in
    */* | *..*) gostash_die "unexpected archive name in SHA256SUMS: $archive" ;;
  esac
  got_version="${archive#gostash-}"
  got_version="${got_version%"$suffix"}"

  if [ "$mode" = dry-run ]; then
    printf '%s\n' "$url/$archive"
    return 0
  fi

  if [ -z "${CI:-}" ] && [ "$yes" = 0 ] && [ -t 2 ] && (: </dev/tty) 2>/dev/null; then
    printf 'Install gostash %s (%s) as %s? [Y/n] ' "$got_version" "$gostash_target" "$dest" >&2
    answer=
    read -r answer </dev/tty || answer=n
    case "$answer" in
      [nN]*) gostash_die "cancelled" ;;
    esac
  fi

  gostash_say "Downloading $url/$archive"
  gostash_fetch "$url/$archive" "$tmp/$archive" || gostash_die "cannot download $url/$archive"
  got_sum=$(gostash_sha256 "$tmp/$archive")
  if [ "$got_sum" != "$want_sum" ]; then
    gostash_die "checksum mismatch for $archive: SHA256SUMS says $want_sum, the download is $got_sum; refusing to install (nothing was changed)"
  fi

  mkdir "$tmp/x" || gostash_die "cannot create $tmp/x"
  if [ "$gostash_ext" = zip ]; then
    if gostash_has unzip; then
      unzip -q "$tmp/$archive" -d "$tmp/x" || gostash_die "cannot unpack $archive"
    else
      tar -xf "$tmp/$archive" -C "$tmp/x" || gostash_die "cannot unpack $archive (install unzip)"
    fi
  else
    case "$archive" in
      *.tar.xz)
        if gostash_has xz; then
          # The archive's checksum is already verified: a failing xz can only be a local problem.
          xz -dc "$tmp/$archive" >"$tmp/gostash.tar" || gostash_die "cannot unpack $archive (xz -d failed)"
          tar -xf "$tmp/gostash.tar" -C "$tmp/x" || gostash_die "cannot unpack $archive"
        else
          tar -xJf "$tmp/$archive" -C "$tmp/x" || gostash_die "cannot unpack $archive"
        fi
        ;;
      *) tar -xzf "$tmp/$archive" -C "$tmp/x" || gostash_die "cannot unpack $archive" ;;
    esac
  fi
  new="$tmp/x/gostash$gostash_exe"
  [ -f "$new" ] || gostash_die "$archive does not contain gostash$gostash_exe"
  chmod 755 "$new" || gostash_die "chmod failed"

  # The binary must run here before it replaces anything.
  if [ "$target_given" = 0 ]; then
    if ! ran=$("$new" version 2>&1); then
      gostash_die "the downloaded binary does not run on this machine; nothing was installed. Output: $ran"
    fi
  fi

  mkdir -p "$bindir" || gostash_die "cannot create $bindir"
  # Copy next to the destination, then rename: a running gostash keeps its
  # old file, and no one ever sees half a binary.
  if ! { cp "$new" "$bindir/.gostash.$$.tmp" && chmod 755 "$bindir/.gostash.$$.tmp" && mv -f "$bindir/.gostash.$$.tmp" "$dest"; }; then
    rm -f "$bindir/.gostash.$$.tmp"
    gostash_die "cannot install into $bindir (try --prefix, or GOSTASH_INSTALL)"
  fi

  gostash_say ""
  gostash_say "Installed gostash $got_version ($gostash_target): $dest"
  if [ -n "${GITHUB_PATH:-}" ]; then
    printf '%s\n' "$bindir" >>"$GITHUB_PATH"
    gostash_say "Added $bindir to GITHUB_PATH for the next steps of this job."
  fi
  case ":${PATH:-}:" in
    *":$bindir:"*) gostash_say "$bindir is already on your PATH." ;;
    *)
      gostash_say "$bindir is not on your PATH yet. Add this line to your shell profile (~/.profile, ~/.bashrc, ~/.zshrc):"
      gostash_say "  export PATH=\"$bindir:\$PATH\""
      ;;
  esac
  gostash_say "Use it as Go's build cache (Go 1.24+):"
  case "$dest" in
    *" "*) gostash_say "  go env -w GOCACHEPROG='\"$dest\"'" ;;
    *) gostash_say "  go env -w GOCACHEPROG=$dest" ;;
  esac
  gostash_say "Shared cache, daemon and module proxy: https://github.com/$repo/blob/main/docs/install.md"
}

main "$@"
