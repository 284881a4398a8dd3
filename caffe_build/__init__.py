"""Caffe obtained, patched and built from source, once per machine
(docs/caffe.md): build_caffe.sh, setup.sh (what
`make setup` runs), check_cuda.sh (`make check-cuda`), the patch series
under caffe_patches/, and fatbin_archs.py, which reads the GPU
architectures compiled into a CUDA library (`python -m tools.fatbin_archs`)."""
