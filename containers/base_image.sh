#!/usr/bin/env bash
# The Debian 12 image both targets start from; prints its name.
#
#   containers/base_image.sh
#
# debian:12 from Docker Hub where a registry answers; where none does, the
# bare root of containers/debian_root.sh (debootstrap from Debian's mirror),
# imported once as localhost/reid-debian:12.
set -euo pipefail
source "$(dirname "$0")/engine.sh"
HUB=docker.io/library/debian:12
LOCAL=localhost/reid-debian:12

has() { "$ENGINE" image inspect "$1" >/dev/null 2>&1; }
for name in "$HUB" "$LOCAL"; do
  if has "$name"; then echo "$name"; exit 0; fi
done
log="$LOG_DIR/base-image.log"
if timeout "${PULL_TIMEOUT:-60}" "$ENGINE" pull "$HUB" >"$log" 2>&1; then
  say "pulled $HUB"
  echo "$HUB"
  exit 0
fi
say "no registry answered for $HUB (log: $log); importing a debootstrapped Debian 12 as $LOCAL"
root=$("$ROOT/containers/debian_root.sh")
# debootstrap's downloaded packages and package lists stay out (80 MB).
tar -C "$root" --exclude=./.complete --exclude='./var/cache/apt/archives/*.deb' \
    --exclude='./var/lib/apt/lists/*' -c . | "$ENGINE" import - "$LOCAL" >>"$log" 2>&1 \
  || die "$ENGINE import of $root failed: see $log"
echo "$LOCAL"
