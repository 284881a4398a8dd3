#!/usr/bin/env bash
# CUDA compile check (docs/caffe.md): build the CUDA variant of
# Caffe for sm_90 on a machine with nvcc but no GPU, then run the CPU-mode
# test suite on that build's pycaffe. About 17 minutes on 2 cores.
#
# cuBLAS and cuRAND come from PyPI wheels; one directory merging the toolkit
# with the wheels' headers and libraries serves as CUDA_TOOLKIT_ROOT_DIR.
#
#   caffe_build/check_cuda.sh [--build-only]
#
# --build-only stops after the build and prints CAFFE_PREFIX=<prefix> (the GPU
# kit's build: PYTHON, CAFFE_WITHOUT and BOOST_PYTHON_LIBRARY pass through to
# build_caffe.sh).
set -euo pipefail
BUILD_ONLY=0
[ "${1:-}" = --build-only ] && BUILD_ONLY=1
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CAFFE_CACHE="${CAFFE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reid-caffe}"
TOOLKIT="${CUDA_TOOLKIT:-/usr/local/cuda}"
WHEELS="$CAFFE_CACHE/cuda-wheels"
MERGED="$CAFFE_CACHE/cuda-merged"
# cuBLAS and cuRAND at the pins of the cuda image's wheels
mapfile -t CUDA_WHEELS < <(grep -E '^nvidia-(cublas|curand)==' "$ROOT/caffe_build/cuda-wheels.txt")
say() { echo "[check_cuda] $*" >&2; }

[ -x "$TOOLKIT/bin/nvcc" ] || { echo "check_cuda: error: no nvcc under $TOOLKIT (set CUDA_TOOLKIT)" >&2; exit 1; }
# .complete holds the pins installed: other pins install anew.
if [ "$(cat "$WHEELS/.complete" 2>/dev/null)" != "${CUDA_WHEELS[*]}" ]; then
  say "installing ${CUDA_WHEELS[*]} into $WHEELS"
  rm -rf "$WHEELS"
  "$ROOT/.venv/bin/python" -m pip install -q --target "$WHEELS" "${CUDA_WHEELS[@]}"
  echo "${CUDA_WHEELS[*]}" > "$WHEELS/.complete"
fi
wheel_root=$(dirname "$(find "$WHEELS/nvidia" -maxdepth 3 -name cublas_v2.h | head -1)")/..

rm -rf "$MERGED"; mkdir -p "$MERGED/include" "$MERGED/lib64"
for d in "$TOOLKIT"/*; do
  case "$(basename "$d")" in include|lib64|lib) ;; *) ln -s "$d" "$MERGED/" ;; esac
done
for f in "$TOOLKIT"/include/* "$wheel_root"/include/*; do ln -sf "$f" "$MERGED/include/"; done
for f in "$TOOLKIT"/lib64/* "$wheel_root"/lib/*; do ln -sf "$f" "$MERGED/lib64/"; done
ln -s lib64 "$MERGED/lib"
# CMake's FindCUDA looks for the unversioned names.
for lib in cublas cublasLt curand; do
  so=$(ls "$MERGED"/lib64/lib$lib.so.* | head -1)
  ln -sf "$(basename "$so")" "$MERGED/lib64/lib$lib.so"
done

start=$(date +%s)
out=$(PYTHON="${PYTHON:-$ROOT/.venv/bin/python}" CUDA_ROOT="$MERGED" CUDA_ARCH_BIN="${CUDA_ARCH_BIN:-90}" \
      "$ROOT/caffe_build/build_caffe.sh" --cuda)
PREFIX=$(sed -n 's/^CAFFE_PREFIX=//p' <<<"$out" | tail -1)
say "CUDA build at $PREFIX ($(( $(date +%s) - start ))s this run; $(cat "$PREFIX/.complete"))"
"$ROOT/.venv/bin/python" -m tools.fatbin_archs "$PREFIX"/lib/libcaffe.so.*.* | sed 's/^/[check_cuda] device code in /' >&2

if [ "$BUILD_ONLY" = 1 ]; then echo "CAFFE_PREFIX=$PREFIX"; exit 0; fi

say "running the CPU-mode tests on the CUDA build's pycaffe"
CAFFE_PREFIX="$PREFIX" PYTHONPATH="$PREFIX/python" "$ROOT/.venv/bin/python" -m pytest "$ROOT/tests" -q
