# The project's images (docs/containers.md): two targets on one Debian 12 base.
#
#   make image          reid-caffe:cpu    (containers/build_image.sh cpu)
#   make image-cuda     reid-caffe:cuda   (CUDA 13 from PyPI wheels, sm_75..sm_90)
#   make test-image     builds reid-caffe:cpu and cpu-test (the image with the suite's
#                       own tools), runs the suite and a small demo
#
# Caffe and the venv are built in a builder stage by the same script as on a
# development machine (make setup); a runtime stage takes the installed Caffe
# prefix, the venv, the shared libraries they load and the project, and no
# compiler. The image holds no .git: the build names its commit instead
# (make image passes these; a plain build must too):
#
#   docker build --target cpu -t reid-caffe:cpu \
#     --build-arg SOURCE_COMMIT=$(git rev-parse HEAD) \
#     --build-arg SOURCE_CHANGED=$(git status --porcelain | wc -l) .
ARG BASE=debian:12
ARG CUDA_ARCH_BIN="75 80 86 89 90"

# ------------------------------------------------------------------ base
# A TLS-re-signing network's CA, where the base carries one in
# /usr/local/share/ca-certificates (containers/debian_root.sh copies the
# host's), is trusted before anything is fetched over https; pip reads the
# system's bundle, not its own. Packages leave out their documentation and
# translations, and apt keeps no downloaded package (the image's size).
FROM ${BASE} AS os
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CAFFE_CACHE=/opt/caffe
COPY containers/dpkg-excludes /etc/dpkg/dpkg.cfg.d/excludes
COPY containers/apt-no-cache /etc/apt/apt.conf.d/no-cache
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends ca-certificates python3 python3-venv make \
    && update-ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /reid

# ------------------------------------------------------------------ builders
# Only what the build reads is copied, so that a change to the project does
# not rebuild Caffe. build_caffe.sh installs Caffe's apt build dependencies.
FROM os AS build-tools
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends python3-dev curl debian-archive-keyring
COPY requirements.txt Makefile ./
COPY caffe_build caffe_build
COPY containers/runtime_libs.sh containers/

FROM build-tools AS build
RUN make setup \
    && containers/runtime_libs.sh "$(cat .venv/caffe-prefix)" /opt/runtime \
    && find /opt/caffe -mindepth 1 -maxdepth 1 ! -path "$(cat .venv/caffe-prefix)" -exec rm -rf {} +

# ------------------------------------------------------------------ runtimes
# Both runtimes hold graphviz (net diagrams) beyond Caffe's libraries.
# CAFFE_NO_APT_INSTALL: build_caffe.sh never installs build dependencies into
# a runtime.
FROM os AS runtime
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends graphviz \
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/reid/.venv/bin:$PATH CAFFE_NO_APT_INSTALL=1
# docker run --rm -v $PWD/runs:/reid/runs IMAGE   leaves the demo's report in ./runs/demo
CMD ["python", "-m", "tools.demo"]

FROM runtime AS cpu
COPY --from=build /opt/runtime/packages.txt /opt/runtime/
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends $(cat /opt/runtime/packages.txt) \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/runtime/root/ /
COPY --from=build /opt/caffe /opt/caffe
COPY --from=build /reid/.venv /reid/.venv
COPY . /reid
ARG SOURCE_COMMIT
ARG SOURCE_CHANGED
RUN containers/source_state.sh "$SOURCE_COMMIT" "$SOURCE_CHANGED" > .source-state.json

# The test suite's own tools, kept out of the image (about 700 MB): Chromium
# renders the report page, git makes the provenance tests' scratch checkouts.
# make test-image runs the suite in this image.
FROM cpu AS cpu-test
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends chromium git \
    && rm -rf /var/lib/apt/lists/*

# ------------------------------------------------------------------ cuda
# The toolkit and libraries are PyPI's CUDA 13 wheels (caffe_build/cuda-wheels.txt):
# no registry beyond Debian's and PyPI is needed. The architecture list is
# explicit ("Auto" needs a GPU at build time) and checked in the fat binary.
FROM build-tools AS cuda-build
ARG CUDA_ARCH_BIN
COPY containers/cuda_toolkit.sh containers/
RUN python3 -m venv /tmp/pip && PYTHON=/tmp/pip/bin/python containers/cuda_toolkit.sh /opt/cuda \
    && rm -rf /tmp/pip
ENV CUDA=1 CUDA_ROOT=/opt/cuda NCCL_DIR=/opt/cuda CUDA_ARCH_BIN=${CUDA_ARCH_BIN}
RUN make setup \
    && containers/runtime_libs.sh "$(cat .venv/caffe-prefix)" /opt/runtime \
    && find /opt/caffe -mindepth 1 -maxdepth 1 ! -path "$(cat .venv/caffe-prefix)" -exec rm -rf {} +

# On a GPU machine, `docker run --gpus all reid-caffe:cuda-test make -o setup test` runs
# the GPU tests too; without a GPU they are skipped.
FROM runtime AS cuda
ARG CUDA_ARCH_BIN
COPY --from=cuda-build /opt/runtime/packages.txt /opt/runtime/
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends $(cat /opt/runtime/packages.txt) \
    && rm -rf /var/lib/apt/lists/*
COPY --from=cuda-build /opt/runtime/root/ /
COPY --from=cuda-build /opt/caffe /opt/caffe
COPY --from=cuda-build /reid/.venv /reid/.venv
COPY . /reid
RUN python -m tools.fatbin_archs /opt/caffe/cuda-*/lib/libcaffe.so.*.* | tee /opt/caffe/fatbin-archs.txt \
    && for a in $CUDA_ARCH_BIN; do grep -qw "sm_$a" /opt/caffe/fatbin-archs.txt \
         || { echo "error: libcaffe holds no device code for sm_$a" >&2; exit 1; }; done
ARG SOURCE_COMMIT
ARG SOURCE_CHANGED
RUN containers/source_state.sh "$SOURCE_COMMIT" "$SOURCE_CHANGED" > .source-state.json

# The suite's tools on the cuda image (containers/test_image.sh cuda runs the suite in it).
FROM cuda AS cuda-test
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends chromium git \
    && rm -rf /var/lib/apt/lists/*
