"""The commands, and only those: each `python -m tools.X` parses its options
with common/cli.py (one `error: …` line, exit 2 for bad input, 1 for a
failed run, 130 when interrupted) and makes one call into the library
packages (data_prep, networks, training, evaluation, unsupervised,
experiments, caffe_build)."""
