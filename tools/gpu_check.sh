#!/usr/bin/env bash
# The GPU check on a bare CUDA 13 machine without network (docs/gpu.md):
#
#   bash tools/gpu_check.sh KIT OUT [--cpu] [--short]
#
# KIT is the folder `make gpu-kit` made (carried beside the checkout), OUT the
# folder for gpu_check.json, gpu_check.md and the test log. The kit is
# unpacked under $TMPDIR (default /tmp), the loader pointed at it and at the
# machine's own CUDA libraries (NVIDIA's wheels of its python3), then
# bench/gpu_check.py runs the GPU tests and the benchmarks. --cpu puts the CPU
# in the GPU's place (the rehearsal without a GPU); --short runs small sizes.
# PYTHON overrides the interpreter (default: python3, a 3.12 with NumPy).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ $# -lt 2 ]; then
  echo "usage: bash tools/gpu_check.sh KIT OUT [--cpu] [--short]" >&2
  echo "error: give the kit folder and the output folder" >&2
  exit 2
fi
KIT="$1" OUT="$2"; shift 2
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || { echo "error: $PY: no such interpreter (set PYTHON)" >&2; exit 2; }
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' \
  || { echo "error: $PY is Python $("$PY" -c 'import platform; print(platform.python_version())'); the kit's pycaffe is for 3.12 (set PYTHON)" >&2; exit 2; }
cd "$ROOT"
echo "[gpu_check] unpacking $KIT"
lines=$("$PY" -m bench.gpu_kit "$KIT" "${TMPDIR:-/tmp}") || exit $?
eval "$lines"
echo "[gpu_check] kit at $KIT_ROOT; CUDA libraries from ${CUDA_LIB_DIRS:-the paths the loader knows}"
export LD_LIBRARY_PATH="$KIT_ROOT/lib${CUDA_LIB_DIRS:+:$CUDA_LIB_DIRS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONPATH="$KIT_ROOT/caffe/python:$KIT_ROOT/site:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export CAFFE_PREFIX="$KIT_ROOT/caffe" PYTHONUNBUFFERED=1
exec "$PY" -m bench.gpu_check "$OUT" "$@"
