#!/usr/bin/env bash
# A CUDA toolkit root made of the pinned PyPI wheels of caffe_build/cuda-wheels.txt:
#
#   containers/cuda_toolkit.sh DIR        (DIR must not exist)
#
# The CUDA 13 wheels share one tree (nvidia/cu13: bin/nvcc, nvvm, include,
# lib); NCCL's (nvidia/nccl) is merged into it. What nvcc and CMake's FindCUDA
# look for beyond the wheels' files is added as links: lib64, the
# targets/x86_64-linux folder nvcc.profile names, and the unversioned library
# names the linker wants.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir=${1:?usage: cuda_toolkit.sh DIR}
die() { echo "cuda_toolkit: error: $*" >&2; exit 1; }
[ ! -e "$dir" ] || die "$dir exists"
python=${PYTHON:-python3}
wheels="$dir.wheels"
rm -rf "$wheels"
"$python" -m pip install -q --no-deps --target "$wheels" -r "$HERE/../caffe_build/cuda-wheels.txt" >&2 \
  || die "pip could not install the wheels of caffe_build/cuda-wheels.txt"
[ -x "$wheels/nvidia/cu13/bin/nvcc" ] || die "no nvidia/cu13/bin/nvcc in the wheels"
mv "$wheels/nvidia/cu13" "$dir"
cp -a "$wheels/nvidia/nccl/include/." "$dir/include/"
cp -a "$wheels/nvidia/nccl/lib/." "$dir/lib/"
rm -rf "$wheels"
ln -s lib "$dir/lib64"
mkdir -p "$dir/targets/x86_64-linux"
ln -s ../../include "$dir/targets/x86_64-linux/include"
ln -s ../../lib "$dir/targets/x86_64-linux/lib"
for so in "$dir"/lib/lib*.so.*; do
  base="${so%.so.*}.so"
  [ -e "$base" ] || ln -s "$(basename "$so")" "$base"
done
"$dir/bin/nvcc" --version | tail -2 >&2
