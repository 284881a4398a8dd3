#!/usr/bin/env bash
# Build one of the Dockerfile's images with podman or docker (make image,
# make image-cuda):
#
#   containers/build_image.sh TARGET     cpu, cuda -> reid-caffe:cpu, reid-caffe:cuda;
#                                        cpu-test, cuda-test: those with the suite's tools
#
# The image records the commit it is built from and how many paths differ
# from it (git status), since it holds no .git. The engine's output goes to
# runs/images/build-TARGET.log; the last line on stdout is the image's name.
# The engine reads the checkout while it builds: where the checkout changed
# meanwhile, the image would record a state it does not hold, so the build
# is refused then (the image stays, under its tag, until built again).
set -euo pipefail
source "$(dirname "$0")/engine.sh"
target=${1:-}
case "$target" in cpu|cuda|cpu-test|cuda-test) ;; *) die "unknown target '$target' (expected cpu, cuda, cpu-test or cuda-test)" ;; esac
commit=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null) \
  || die "$ROOT is no git checkout: an image records the commit it is built from"
changed=$(git -C "$ROOT" status --porcelain | grep -c . || true)
state() { git -C "$ROOT" rev-parse HEAD; git -C "$ROOT" status --porcelain; git -C "$ROOT" diff HEAD; }
before=$(state | sha256sum)
base=$("$ROOT/containers/base_image.sh")
tag=reid-caffe:$target
log="$LOG_DIR/build-$target.log"
say "building $tag from $base with $ENGINE: commit ${commit:0:12}, $changed changed path(s) (log: $log)"
start=$(date +%s)
"$ENGINE" build --target "$target" --build-arg BASE="$base" \
    --build-arg SOURCE_COMMIT="$commit" --build-arg SOURCE_CHANGED="$changed" \
    ${CUDA_ARCH_BIN:+--build-arg CUDA_ARCH_BIN="$CUDA_ARCH_BIN"} \
    -t "$tag" "$ROOT" >"$log" 2>&1 \
  || { tail -15 "$log" >&2; die "$ENGINE build --target $target failed: see $log"; }
[ "$(state | sha256sum)" = "$before" ] \
  || die "the checkout changed while $tag was built (it was commit ${commit:0:12} with $changed changed path(s)): the image may hold files of both; build it again"
size=$("$ENGINE" image inspect --format '{{.Size}}' "$tag")
say "built $tag in $(( $(date +%s) - start )) s: $(( size / 1000000 )) MB"
echo "$tag"
