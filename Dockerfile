# Two targets, one build script (caffe_build/setup.sh -> caffe_build/build_caffe.sh):
#
#   docker build --target cpu  -t reid-caffe:cpu  .
#   docker build --target cuda -t reid-caffe:cuda .      # CUDA 12.6, sm_75..sm_90
#   docker run --rm reid-caffe:cpu                       # the test suite
#   docker run --rm --gpus all reid-caffe:cuda           # tests, GPU ones included
#
# Both install only the OS basics here; the apt build dependencies, Caffe's
# source (GitHub tarball, else Debian's source package), the patches and the
# CMake build are the script's, exactly as on a development machine and CI.

# ------------------------------------------------------------------ CPU
FROM debian:12 AS cpu
ENV DEBIAN_FRONTEND=noninteractive PY_BASE=python3
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3 python3-venv python3-dev make git ca-certificates curl \
        debian-archive-keyring graphviz \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /reid
COPY . /reid
RUN make setup && make test
CMD ["make", "test"]

# ------------------------------------------------------------------ CUDA
# CUDA >= 12 on Ubuntu 24.04 (Boost 1.83, protobuf 3.21, OpenCV 4.6: the same
# package names as Debian 12). The devel image brings NCCL for multi-GPU.
# The architecture list is explicit: "Auto" fails without a GPU at build time.
FROM nvidia/cuda:12.6.3-devel-ubuntu24.04 AS cuda
ENV DEBIAN_FRONTEND=noninteractive PY_BASE=python3 CUDA=1 \
    CUDA_ARCH_BIN="75 80 86 89 90" CUDA_ROOT=/usr/local/cuda
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3 python3-venv python3-dev make git ca-certificates curl \
        debian-archive-keyring graphviz \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /reid
COPY . /reid
# Tests at build time run in CPU mode (no GPU in `docker build`); `docker run
# --gpus all` runs them again with the GPU tests enabled.
RUN make setup && make test
CMD ["make", "test"]
