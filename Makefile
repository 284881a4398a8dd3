# The project's entry points (README.md). Every target is safe to rerun:
# setup reuses the venv and the cached Caffe build.
PY := .venv/bin/python
# CUDA=1 (e.g. `make setup CUDA=1`, or the Docker cuda target) builds and uses
# the CUDA variant of Caffe.
SETUP_FLAGS := $(if $(filter 1,$(CUDA)),--cuda,)

.PHONY: setup demo test bench check-cuda gpu-kit diagrams image image-cuda test-image

## setup: venv + Caffe built from source (cached) + pycaffe wired into the venv
setup:
	bash caffe_build/setup.sh $(SETUP_FLAGS)

## demo: setup, then the main job
demo: setup
	$(PY) -m tools.demo

## test: setup, then the whole test suite, one worker per core (at most 4;
## TEST_WORKERS=1 for one process), each test file in one worker; TEST_ARGS: more pytest arguments
TEST_WORKERS ?= $(shell n=$$(nproc); [ $$n -gt 4 ] && n=4; echo $$n)
TEST_ARGS ?=
test: setup
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(TEST_ARGS) tests

## bench: setup, then every benchmark under bench/ (ratios against in-run references)
bench: setup
	$(PY) -m bench

## check-cuda: compile and link the CUDA variant (sm_90) here, then run the CPU tests on it (~20 min)
check-cuda: setup
	bash caffe_build/check_cuda.sh

## gpu-kit: gpu-kit/, all a bare GPU machine without network lacks, compressed (docs/gpu.md);
## the CUDA build of check-cuda for Python 3.12, cached
gpu-kit: setup
	bash caffe_build/gpu_kit.sh

## diagrams: redraw docs/diagrams/ from prototxt/ with Caffe's own drawing module (graphviz),
## and docs/images/rulegraph.png, the workflow's rules (Snakemake's --rulegraph)
diagrams: setup
	$(PY) -m tools.draw_nets
	$(PY) -m tools.reproduce --rulegraph all | dot -Tpng -Gdpi=110 -o docs/images/rulegraph.png

## image, image-cuda: the container images reid-caffe:cpu / reid-caffe:cuda (Dockerfile), with
## podman or docker, whichever is present (docs/containers.md)
image:
	bash containers/build_image.sh cpu
image-cuda:
	bash containers/build_image.sh cuda

## test-image: build reid-caffe:cpu, run the test suite and a small demo inside, make a SIF of it
test-image:
	bash containers/test_image.sh
