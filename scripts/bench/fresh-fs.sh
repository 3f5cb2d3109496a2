#!/usr/bin/env bash
# A fresh ext4 file system for the benchmarks' local caches, like a CI
# runner's disk (mkfs defaults: with a journal), loop-mounted from an image
# file. Needs root (mkfs, losetup, mount).
#
#   scripts/bench/fresh-fs.sh [DIR] [SIZE]     default /mnt/gostash-bench 8G
#   npx bun scripts/bench/s3.ts --scratch DIR ...
#   scripts/bench/fresh-fs.sh --remove [DIR]
#
# Why: every variant of s3.ts creates thousands of files per run and deletes
# them afterwards. On a file system that has seen millions of those (the
# root file system of a long-lived dev machine; here ext4 without a journal),
# creating a file can cost several times what it costs on a fresh one
# (ext4's inode allocator looks up recently freed inodes in the buffer
# cache), and that cost lands on every variant alike, pushing every ratio
# towards 1. The image lives in /var/tmp (DIR.img); it is sparse.
set -euo pipefail
if [[ "${1:-}" == "--remove" ]]; then
  dir="${2:-/mnt/gostash-bench}"
  umount "$dir" && rm -f "/var/tmp/$(basename "$dir").img" && rmdir "$dir"
  exit 0
fi
dir="${1:-/mnt/gostash-bench}"
size="${2:-8G}"
img="/var/tmp/$(basename "$dir").img"
[[ $EUID -eq 0 ]] || { echo "fresh-fs.sh: needs root (mkfs.ext4, mount -o loop)" >&2; exit 1; }
for tool in mkfs.ext4 losetup mount; do
  command -v "$tool" >/dev/null || { echo "fresh-fs.sh: $tool is missing (apt-get install e2fsprogs mount)" >&2; exit 1; }
done
if mountpoint -q "$dir"; then umount "$dir"; fi
rm -f "$img"
truncate -s "$size" "$img"
mkfs.ext4 -q -F "$img"
mkdir -p "$dir"
mount -o loop "$img" "$dir"
echo "fresh ext4 at $dir ($size, image $img); use: npx bun scripts/bench/s3.ts --scratch $dir" >&2
