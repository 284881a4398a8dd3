#!/usr/bin/env bash
# A project image as an Apptainer SIF, for clusters that run Apptainer
# rather than Docker (docs/containers.md):
#
#   containers/sif.sh IMAGE OUT.sif           e.g. reid-caffe:cuda reid-caffe-cuda.sif
#   containers/sif.sh --exec SIF COMMAND...   run COMMAND in SIF with that apptainer
#
# Debian 12 has no apptainer: Debian unstable's runs in a privileged container
# (containers/apptainer.Dockerfile, built once as localhost/reid-apptainer),
# and builds the SIF from the image saved as a docker archive.
set -euo pipefail
source "$(dirname "$0")/engine.sh"
TOOL=localhost/reid-apptainer:latest

tool() {  # the apptainer image, built when missing
  "$ENGINE" image inspect "$TOOL" >/dev/null 2>&1 && return
  local log="$LOG_DIR/apptainer-image.log"
  say "building $TOOL, Debian unstable's apptainer (log: $log)"
  "$ENGINE" build -f "$ROOT/containers/apptainer.Dockerfile" \
      --build-arg BASE="$("$ROOT/containers/base_image.sh")" -t "$TOOL" "$ROOT/containers" >"$log" 2>&1 \
    || die "$ENGINE build of $TOOL failed: see $log"
}

if [ "${1:-}" = --exec ]; then
  sif=$(realpath "${2:?usage: sif.sh --exec SIF COMMAND...}")
  shift 2
  tool
  # --no-privs: as root without every capability (a sandboxed host lacks
  # CAP_SYS_RESOURCE, which root's apptainer asks for), like a cluster's user.
  exec "$ENGINE" run --rm --privileged -v "$(dirname "$sif"):/sif:ro" "$TOOL" \
    apptainer exec --no-privs "/sif/$(basename "$sif")" "$@"
fi
image=${1:?usage: sif.sh IMAGE OUT.sif}
out=${2:?usage: sif.sh IMAGE OUT.sif}
"$ENGINE" image inspect "$image" >/dev/null 2>&1 || die "no image $image (make image builds reid-caffe:cpu)"
tool
mkdir -p "$(dirname "$out")"
work=$(mktemp -d "$(cd "$(dirname "$out")" && pwd)/.sif.XXXXXX")
trap 'rm -rf "$work"' EXIT
log="$LOG_DIR/sif.log"
say "saving $image and building $out (log: $log)"
if [ "$ENGINE" = podman ]; then
  podman save --format docker-archive -o "$work/image.tar" "$image" >"$log" 2>&1
else
  docker save -o "$work/image.tar" "$image" >"$log" 2>&1
fi || die "$ENGINE save $image failed: see $log"
"$ENGINE" run --rm --privileged -v "$work:/work" "$TOOL" \
    apptainer build /work/image.sif docker-archive:/work/image.tar >>"$log" 2>&1 \
  || die "apptainer build failed: see $log"
mv "$work/image.sif" "$out"
say "$out: $(( $(stat -c %s "$out") / 1000000 )) MB"
