#!/usr/bin/env bash
# The GPU kit's rehearsal without a GPU (docs/gpu.md): tools/gpu_check.sh in
# CPU mode inside a bare Debian 12 root (containers/debian_root.sh) that holds
# only stand-ins for what the GPU machine has, entered with unshare + chroot,
# with no network; whatever the kit lacks shows up there.
#
#   caffe_build/gpu_kit_rehearsal.sh KIT OUT [--short]
#
# The root is never changed: an overlay (the stand-ins over it, a scratch
# layer on top) is mounted in a private mount namespace. The stand-ins: the
# Python 3.12 the kit was built with (PYTHON312, as gpu_kit.sh finds it) at
# its own path, the system libraries its standard modules link, and the
# packages of requirements.txt that the GPU machine's image has
# (STANDIN_PACKAGES, pinned as there) plus NVIDIA's CUDA runtime, cuBLAS and
# cuRAND wheels; made once, cached. The checkout travels as the device tool
# sends it (tracked and untracked files that git does not ignore) with KIT
# beside it. Needs root. OUT receives gpu_check.json, gpu_check.md,
# tests.log and rehearsal.log.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CAFFE_CACHE="${CAFFE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reid-caffe}"
# requirements.txt's packages that the GPU machine's image lists (docs/gpu.md).
STANDIN_PACKAGES=(numpy scipy scikit-image pillow h5py protobuf six matplotlib tqdm pytest pytest-xdist execnet)
STANDIN_CUDA=(nvidia-cuda-runtime==13.0.96 nvidia-cublas==13.10.0.20 nvidia-curand==10.4.5.25)
say() { echo "[rehearsal] $*" >&2; }
die() { echo "gpu_kit_rehearsal: error: $*" >&2; exit 1; }

[ $# -ge 2 ] || { echo "usage: caffe_build/gpu_kit_rehearsal.sh KIT OUT [--short]" >&2; echo "error: give the kit folder and the output folder" >&2; exit 2; }
KIT="$(cd "$1" 2>/dev/null && pwd)" || die "$1: no such kit folder"
OUT="$2"; shift 2
[ -f "$KIT/manifest.json" ] || die "$KIT/manifest.json: not a GPU kit (make gpu-kit makes one)"
[ "$(id -u)" = 0 ] || die "the rehearsal needs root (unshare, chroot, mount)"
start=$(date +%s)
ROOTFS=$(bash "$ROOT/containers/debian_root.sh")

# ---- the stand-ins, cached by what they hold
PY312="${PYTHON312:-}"
for c in "$PY312" "$(command -v python3.12 2>/dev/null || true)" "$HOME"/.pyenv/versions/3.12*/bin/python3.12; do
  [ -n "$c" ] && [ -x "$c" ] && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null && { PY312="$c"; break; }
done
[ -n "$PY312" ] || die "no Python 3.12 found to stand in for the GPU machine's: set PYTHON312"
PREFIX=$("$PY312" -c 'import sys; print(sys.base_prefix)')
pins=()
for p in "${STANDIN_PACKAGES[@]}"; do
  pin=$(grep -iE "^$p==" "$ROOT/requirements.txt" | cut -d' ' -f1) || die "requirements.txt pins no $p"
  pins+=("$pin")
done
KEY=$( { echo "$PREFIX"; "$PY312" -VV; printf '%s\n' "${pins[@]}" "${STANDIN_CUDA[@]}"; cat "$ROOTFS/.complete"; } | sha256sum | cut -c1-16)
STANDIN="$CAFFE_CACHE/gpu-standin-$KEY"
if [ ! -f "$STANDIN/.complete" ]; then
  say "making the stand-ins for the GPU machine's Python and packages: $STANDIN"
  log="$CAFFE_CACHE/gpu-standin-$KEY.log"
  tmp="$STANDIN.part"; rm -rf "$tmp"; mkdir -p "$tmp$PREFIX" "$tmp/usr/lib/x86_64-linux-gnu" "$tmp/usr/local/bin"
  # Python as installed, less its tests and Tk
  (cd "$PREFIX" && tar -cf - --exclude='lib/python3.12/test' --exclude='lib/python3.12/idlelib' \
     --exclude='lib/python3.12/tkinter' --exclude='lib/python3.12/turtledemo' --exclude='*/_tkinter*' \
     --exclude='__pycache__' .) | tar -xf - -C "$tmp$PREFIX"
  # the system libraries its own modules link that the bare root lacks
  for f in "$tmp$PREFIX"/lib/python3.12/lib-dynload/*.so "$tmp$PREFIX"/lib/libpython3.12.so.1.0; do ldd "$f"; done 2>/dev/null \
    | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u | while read -r soname path; do
        [ -e "$ROOTFS/usr/lib/x86_64-linux-gnu/$soname" ] || [ -e "$ROOTFS/lib/x86_64-linux-gnu/$soname" ] \
          || cp -L "$path" "$tmp/usr/lib/x86_64-linux-gnu/$soname"
      done
  ln -s "$PREFIX/bin/python3.12" "$tmp/usr/local/bin/python3"
  ln -s "$PREFIX/bin/python3.12" "$tmp/usr/local/bin/python3.12"
  # the packages, installed by the copied interpreter into its own site-packages
  "$tmp$PREFIX/bin/python3.12" -m pip install -q --disable-pip-version-check --no-warn-script-location \
    --only-binary=:all: "${pins[@]}" "${STANDIN_CUDA[@]}" >"$log" 2>&1 \
    || die "pip could not install the stand-in packages, log: $log"
  date -u +%FT%TZ > "$tmp/.complete"
  mv "$tmp" "$STANDIN"
fi

# ---- the rehearsal: overlay, the checkout and the kit, no network, chroot
WORK=$(mktemp -d /tmp/reid-rehearsal.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/upper/work/repo" "$WORK/upper/out" "$WORK/ovl" "$WORK/merged"
(cd "$ROOT" && git ls-files -z -co --exclude-standard | xargs -0 cp --parents -a -t "$WORK/upper/work/repo")
cp -a "$KIT" "$WORK/upper/work/repo/gpu-kit"
mkdir -p "$OUT"
args=("$@")
say "gpu_check --cpu ${args[*]} in $ROOTFS (+ stand-ins), no network; log: $OUT/rehearsal.log"
set +e
unshare --mount --net --pid --fork --propagation private bash -c '
  set -e
  w=$1 lower=$2; shift 2
  mount -t overlay overlay -o "lowerdir=$lower,upperdir=$w/upper,workdir=$w/ovl" "$w/merged"
  mount -t proc proc "$w/merged/proc"
  mount -t tmpfs tmpfs "$w/merged/tmp"
  mount -t tmpfs tmpfs "$w/merged/dev/shm"
  exec chroot "$w/merged" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
    bash -c "cd /work/repo && bash tools/gpu_check.sh gpu-kit /out --cpu \"\$@\"" gpu_check "$@"
' rehearsal "$WORK" "$STANDIN:$ROOTFS" "${args[@]}" >"$OUT/rehearsal.log" 2>&1
status=$?
set -e
cp "$WORK"/upper/out/* "$OUT/" 2>/dev/null || true
grep '^\[gpu_check\]' "$OUT/rehearsal.log" | cut -c1-160 >&2 || true
if [ "$status" != 0 ]; then
  die "the rehearsal failed (exit $status): $(tail -1 "$OUT/rehearsal.log"); log: $OUT/rehearsal.log"
fi
say "passed in $(( $(date +%s) - start ))s; $OUT/gpu_check.md"
