#!/usr/bin/env bash
# A bare Debian 12 root made with debootstrap (--variant=minbase), cached:
# the base of the container images where no registry serves debian:12, and
# the bare machine the GPU kit is rehearsed in. Debian's own packages only;
# the mirror is the one this machine's apt uses (override with DEBIAN_MIRROR).
#
#   containers/debian_root.sh            prints the root's path (made once)
#
# The root is made in a temporary folder beside the cache entry and renamed
# when complete, so an interrupted run leaves nothing that looks finished.
set -euo pipefail
CACHE="${CAFFE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reid-caffe}"
ROOTFS="${DEBIAN_ROOT:-$CACHE/debian12-minbase}"
SUITE=bookworm
say() { echo "[debian_root] $*" >&2; }
die() { echo "debian_root: error: $*" >&2; exit 1; }

if [ -f "$ROOTFS/.complete" ]; then
  echo "$ROOTFS"
  exit 0
fi
[ "$(id -u)" = 0 ] || die "debootstrap needs root (to own the root's files)"
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null 2>&1; } \
    || die "apt-get could not install debootstrap"
fi
mirror="${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1)}"
mirror="${mirror:-http://deb.debian.org/debian}"
mkdir -p "$(dirname "$ROOTFS")"
tmp="$ROOTFS.tmp-$$"
trap 'rm -rf "$tmp"' EXIT
log="$(dirname "$ROOTFS")/debian_root.log"
say "debootstrap --variant=minbase $SUITE from $mirror (log: $log)"
debootstrap --variant=minbase "$SUITE" "$tmp" "$mirror" >"$log" 2>&1 \
  || die "debootstrap failed: see $log"
# A machine that re-signs TLS with its own CA: the bare root trusts it too.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$tmp/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$tmp/usr/local/share/ca-certificates/"
fi
date -u +%Y-%m-%dT%H:%M:%SZ > "$tmp/.complete"
[ -e "$ROOTFS" ] && die "$ROOTFS exists but is no complete root of this script: move it away"
mv "$tmp" "$ROOTFS"
trap - EXIT
echo "$ROOTFS"
