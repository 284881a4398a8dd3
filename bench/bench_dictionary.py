"""Geng16 §4.2 graph-regularised dictionary learning (unsupervised/):
samples per second of one learn() on Market-sized features (12,936 × 1,024,
random, half camera A), whose Z step solves K sparse systems by
preconditioned CG, against the same learn() with the Z step's Sylvester
equation solved densely (Bartels–Stewart, scipy.linalg.solve_sylvester on
the dense Laplacian) at 1,000 samples, the size that keeps it to ~10 s an
alternation. Same defaults (K, k, λ), same number of alternations; the
dense cost grows as N³, so its per-sample figure at N = 12,936 would be
~170 × worse than the one shown. Also: learn()'s wall time against its
one-minute budget."""
import time
from unittest import mock

import numpy as np
import scipy.linalg

from bench.timing import Result
from unsupervised import graph_dictionary as gd

SAMPLES, DIM = 12936, 1024   # Market-1501's training set, GoogLeNet pool5
DENSE_SAMPLES = 1000
BUDGET_S = 60.0


def _dense_z_step(Y, D, L, lam, Z0=None):
    """Z DDᵀ + 2λ L Z = Y Dᵀ by a dense Sylvester solve (no warm start)."""
    return scipy.linalg.solve_sylvester(2.0 * lam * L.toarray(), D.dot(D.T), Y.dot(D.T)), 0


def _seconds(n):
    feats = np.random.RandomState(0).randn(n, DIM).astype(np.float32)
    start = time.perf_counter()
    gd.learn(feats[:n // 2], feats[n // 2:], tol=0.0)   # tol 0: both run all gd.ITERS alternations
    return time.perf_counter() - start


def run():
    ours = _seconds(SAMPLES)
    with mock.patch.object(gd, "z_step", _dense_z_step):
        dense = _seconds(DENSE_SAMPLES)
    name = "dictionary learning, %d alternations" % gd.ITERS
    return [
        Result("%s (samples/s)" % name, SAMPLES / ours, DENSE_SAMPLES / dense, "samples/s",
               "dense Sylvester at N=%d" % DENSE_SAMPLES),
        Result("%s, %dx%d wall (s)" % (name, SAMPLES, DIM), ours, BUDGET_S, "s", "budget",
               target="ratio <= 1"),
    ]
