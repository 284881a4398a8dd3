"""Python-layer cost: L2Normalize (ours, numpy) against Caffe's C++ Softmax
layer — the same row-wise normalisation work on the same blob — forward and
backward through pycaffe."""
import numpy as np

from common import caffe_env
import caffe
from caffe import layers as L
from bench.timing import Result, best_time


def _net(shape, python):
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=list(shape)))
    if python:
        n.out = L.Python(n.data, python_param=dict(module="layers.l2_normalize", layer="L2Normalize"))
    else:
        n.out = L.Softmax(n.data)
    net = caffe_env.net_from_spec(n, force_backward=True)
    net.blobs["data"].data[...] = np.random.RandomState(0).randn(*shape)
    return net


def run():
    results = []
    for shape in [(64, 1024), (3968, 1024)]:
        times = {}
        for python in (True, False):
            net = _net(shape, python)
            diff = np.ones(shape, np.float32)

            def step():
                net.forward()
                net.backward(out=diff)
            times[python] = best_time(step, repeat=5, number=3)
        results.append(Result("L2Normalize fwd+bwd %dx%d (s)" % shape, times[True], times[False], "s",
                              "C++ Softmax"))
    return results
