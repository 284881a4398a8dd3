"""Geng16 Python layers' share of one training iteration (CPU, GoogLeNet,
six losses): pair generation and pairwise-consistent dropout against the
whole forward + backward, timed layer by layer in the same run.

Two figures: the whole six-loss net at K = 8, M = 2 (the largest batch
that keeps an iteration to a few seconds on a small CPU), and the paper's
K = 32, M = 2 (3,968 pairs per head) where the heads alone are timed
against 4 × the K = 8 iteration of the base (GoogLeNet's cost is linear in
the batch). Target: under 2 %.
"""
import time

import numpy as np

from common import caffe_env
import caffe
from caffe import layers as L
from bench.timing import Result
from networks import geng16

SMALL_K, PAPER_K, M = 8, 32, 2
ROUNDS = 3


def _fill(net, k, m, seed=0):
    rng = np.random.RandomState(seed)
    for name in net.inputs:
        if name == "label":
            net.blobs[name].data[...] = np.repeat(np.arange(k), m)
        else:
            net.blobs[name].data[...] = rng.uniform(-1, 1, net.blobs[name].data.shape)


def layer_seconds(net, rounds=ROUNDS, sync=None):
    """Seconds of each layer's forward + backward, in the net's order, timing
    each layer alone, from the round whose total was least. `sync` waits for
    the work a layer queued on a GPU (Caffe's kernels return before they end)."""
    sync = sync or (lambda: None)
    n = len(net.layers)
    best = None
    net.forward()
    sync()
    for _ in range(rounds):
        spent = np.zeros(n)
        for i in range(n):
            start = time.perf_counter()
            net._forward(i, i)
            sync()
            spent[i] += time.perf_counter() - start
        for i in reversed(range(n)):
            start = time.perf_counter()
            net._backward(i, i)
            sync()
            spent[i] += time.perf_counter() - start
        best = spent if best is None or spent.sum() < best.sum() else best
    return best


def layer_times(net, rounds=ROUNDS):
    """(seconds in Python layers, seconds in all layers) per forward+backward,
    best of `rounds`, timing each layer alone."""
    spent = layer_seconds(net, rounds)
    python = sum(t for t, layer in zip(spent, net.layers) if layer.type == "Python")
    return python, spent.sum()


def _heads_only(k, m):
    """The six heads on Input features of a K × M batch (no base network)."""
    n = caffe.NetSpec()
    n.label = L.Input(shape=dict(dim=[k * m]))
    feats = []
    for name in ("pool5", "loss1_fc", "loss2_fc"):
        n[name] = L.Input(shape=dict(dim=[k * m, 1024]))
        feats.append(n[name])
    for i, (head, f) in enumerate(zip(geng16.HEADS, feats)):
        scale = 1.0 if head == "main" else geng16.AUX_WEIGHT
        geng16.sid_head(n, head, f, n.label, geng16.NUM_IDS, 0.4, scale)
        geng16.pv_head(n, head, f, n.label, m, 0.4, True, 3 * scale, 10 * (i + 1))
    return n


def run():
    full = caffe_env.net_from_spec(geng16.geng16(data="input", k=SMALL_K, m=M), caffe.TRAIN)
    _fill(full, SMALL_K, M)
    py_small, total_small = layer_times(full)
    heads = caffe_env.net_from_spec(_heads_only(PAPER_K, M), caffe.TRAIN, force_backward=True)
    _fill(heads, PAPER_K, M)
    py_paper, _ = layer_times(heads)
    per_image = total_small / (SMALL_K * M)
    return [
        Result("Python layers, K=%d M=%d iteration (s)" % (SMALL_K, M), py_small, total_small, "s",
               "whole fwd+bwd", "ratio < 0.02"),
        Result("Python layers, K=%d M=%d, 3968 pairs/head (s)" % (PAPER_K, M), py_paper,
               per_image * PAPER_K * M, "s", "fwd+bwd at K=%d ×%d" % (SMALL_K, PAPER_K // SMALL_K),
               "ratio < 0.02"),
    ]
