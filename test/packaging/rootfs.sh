#!/bin/bash
# Prints the path of a tarball holding a minimal Debian root with systemd, building it with debootstrap
# on the first run (about 90 s) and reusing it afterwards: CI runs on the same machine, so the cache makes
# the packaging stage a few minutes warm. The mirror is the one this machine's apt already uses.
set -euo pipefail

suite=${ROOKERY_TEST_SUITE:-bookworm}
# What the .deb depends on plus systemd as PID 1; everything else comes with --variant=minbase.
include=systemd,systemd-sysv,dbus,libstdc++6,libgcc-s1,util-linux,procps
cache_dir=${ROOKERY_TEST_CACHE:-/var/cache/rookery-test}
key=$(printf '%s %s v1' "$suite" "$include" | sha256sum | cut -c1-12)
tarball="$cache_dir/debian-$suite-$key.tar"

if [ -s "$tarball" ]; then
  echo "$tarball"
  exit 0
fi

mirror=${ROOKERY_TEST_MIRROR:-}
if [ -z "$mirror" ]; then
  # deb822 sources first (Debian 12's default), then one-line sources; the first plain Debian archive wins.
  mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
  [ -n "$mirror" ] || mirror=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
fi
if [ -z "$mirror" ]; then
  echo "rootfs.sh: no Debian mirror found in /etc/apt/sources*; set ROOKERY_TEST_MIRROR" >&2
  exit 1
fi

mkdir -p "$cache_dir"
work=$(mktemp -d "$cache_dir/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "rootfs.sh: debootstrap $suite from $mirror (once; cached in $tarball)" >&2
debootstrap --variant=minbase --include="$include" "$suite" "$work/root" "$mirror" >"$work/log" 2>&1 || {
  tail -n 20 "$work/log" >&2
  echo "rootfs.sh: debootstrap failed (log above); check the mirror and free space in $cache_dir" >&2
  exit 1
}
# The root must not carry this machine's identity; systemd makes one at first boot.
rm -f "$work/root/etc/machine-id" && touch "$work/root/etc/machine-id"
rm -rf "$work/root/var/cache/apt/archives/"*.deb
tar -C "$work/root" -cf "$work/root.tar" .
mv "$work/root.tar" "$tarball"
echo "$tarball"
