"""What a seed reproduces. A seeded training run again in
another folder, in a process of its own, gives bit-identical weights; its
BLAS settings are part of that (experiments/workflow.py CPU_KERNELS,
BLAS_THREADS), so every run here pins them as the workflow's jobs do; a
different seed gives different weights (the seed reaches the fillers and
the data order). Both for a stage from the fillers and for a two-stepped
fine-tuning from it, whose new classifier is filled when its initial
weights are built in Python (training/surgery.open_net seeds Caffe there:
without it the demo's fine-tuned models differed between two runs).

Measured on the 2-core AMD EPYC (2026-12-02), the tiny DGDNet stage of
tests/test_learning.py at 80 iterations, comparing weights:
- the same settings in two folders: identical (with 2 or 1 BLAS threads);
- 2 against 1 BLAS thread: different; SkylakeX (detected) against Haswell
  kernels: different; Haswell pinned, with glibc told to ignore AVX-512, or
  AVX2 and FMA too: identical.
"""
import os
import subprocess
import sys

import numpy as np

from common.config import ROOT
from experiments import workflow

TRAIN = """
import sys
from steps import stages as ex
out, seed = sys.argv[1], int(sys.argv[2])
ctx = ex.Context(out, data_root=out, seed=seed, progress=False)
tune = len(sys.argv) > 3
# fine-tuning on another set: other identities, so a new classifier (cls_main_8), filled in Python
split = ex.split(ctx, "synthetic", root=out + ("/tree2" if tune else "/tree"),
                 name="syn2" if tune else "syn", num_ids=16 if tune else 12, seed=0)
train = ex.lmdb(ctx, split, "train", (40, 16))
net = dict(base="dgdnet", k=4, size=(36, 14), solver_kw=dict(base_lr=0.01))
if tune:
    print(ex.geng16(ctx, "t", train, sys.argv[3], (6, 6), two_step=True, **net))
else:
    print(ex.geng16(ctx, "g", train, None, (0, 12), two_step=False, **net))
"""


def _train(folder, seed, weights=None):
    """The model a process of its own trains (as each workflow job is)."""
    env = dict(os.environ, GLOG_minloglevel="2",
               **workflow.arithmetic({"blas_threads": 1, "cpu_kernels": "haswell"}))
    argv = [str(folder), str(seed)] + ([weights] if weights else [])
    proc = subprocess.run([sys.executable, "-c", TRAIN] + argv, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


def _weights(folder, seed):
    """The blobs of a model from the fillers and of one fine-tuned from it."""
    source = _train(folder, seed)
    return _blobs(source), _blobs(_train(folder, seed, source))


def _blobs(path):
    from caffe.proto import caffe_pb2
    model = caffe_pb2.NetParameter()
    with open(path, "rb") as f:
        model.ParseFromString(f.read())
    # the blobs alone: the file also holds the net, whose data layers name their folder
    return {(layer.name, i): np.array(blob.data, np.float32)
            for layer in model.layer for i, blob in enumerate(layer.blobs)}


def test_a_seeded_training_reruns_bit_identically_and_another_seed_does_not(tmp_path):
    first = _weights(tmp_path / "a", 0)
    again = _weights(tmp_path / "elsewhere", 0)
    other = _weights(tmp_path / "b", 1)
    for model, (a, b, c) in zip(("from the fillers", "two-stepped"), zip(first, again, other)):
        assert len(a) > 10 and a.keys() == b.keys() == c.keys(), model
        assert all(np.array_equal(a[k], b[k]) for k in a), model
        changed = {k for k in a if not np.array_equal(a[k], c[k])}
        # every weight blob the fillers drew and training moved (not, e.g., a
        # BatchNorm's constant scale factor)
        drawn = {k for k in a if k[1] == 0 and np.ptp(a[k]) > 0}
        assert len(drawn) > 10 and drawn <= changed, model
