"""Training: one resumable stage through pycaffe's solver (stage.py, with
its run-directory lock, state and records, and the child process the
command runs it in), data-parallel GPUs (multi_gpu.py), weights by layer
name (surgery.py), Geng16's two-stepped fine-tuning (two_step.py), MTDnet's
initial weights (mtdnet_init.py) and the ImageNet models (fetch_weights.py).
The commands are tools.train, tools.surgery, tools.mtdnet_init and
tools.fetch_weights."""
