"""The Caffe build is real — pycaffe imports, nets with a Python
layer run forward and backward with hand-checked numbers, weights round-trip
through .caffemodel, the stock `caffe` tool trains a net with a Python layer
from layers/, and GPU mode without a GPU is a Python error, not an abort."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from common import caffe_env
import caffe
from caffe import layers as L
from layers.l2_normalize import l2_normalize_forward
from tests.helpers import check_gradient, net_from_spec, python_layer_net

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.dirname(sys.executable)


def test_pycaffe_is_the_project_build():
    prefix = caffe_env.caffe_prefix()
    expected = os.environ.get("CAFFE_PREFIX") or open(os.path.join(ROOT, ".venv", "caffe-prefix")).read().strip()
    assert os.path.realpath(prefix) == os.path.realpath(expected)
    assert os.path.isfile(os.path.join(prefix, ".complete"))
    summary = open(os.path.join(prefix, "build-summary.txt")).read()
    assert re.search(r"BUILD_python\s+:\s+ON", summary)
    assert re.search(r"BLAS\s+:\s+Yes \(Open\)", summary)
    assert caffe.__version__ == "1.0.0"


def _conv_python_net():
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[2, 1, 4, 4]))
    n.conv = L.Convolution(n.data, num_output=2, kernel_size=3, bias_term=True)
    n.norm = L.Python(n.conv, python_param=dict(module="layers.l2_normalize", layer="L2Normalize",
                                                param_str='{"eps": 0}'))
    return net_from_spec(n)


def _correlate_valid(x, w):
    """Hand-written 'valid' cross-correlation, Caffe's convolution."""
    n, _, h, wd = x.shape
    o, c, k, _ = w.shape
    out = np.zeros((n, o, h - k + 1, wd - k + 1))
    for i in range(h - k + 1):
        for j in range(wd - k + 1):
            patch = x[:, :, i:i + k, j:j + k]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
    return out


def test_convolution_and_python_layer_forward_backward_numbers():
    net = _conv_python_net()
    x = np.arange(32, dtype=np.float32).reshape(2, 1, 4, 4) / 10.0
    w = np.array([[[[1, 0, -1], [2, 0, -2], [1, 0, -1]]],
                  [[[0, 1, 0], [1, -4, 1], [0, 1, 0]]]], dtype=np.float32)
    b = np.array([0.5, -0.25], dtype=np.float32)
    net.blobs["data"].data[...] = x
    net.params["conv"][0].data[...] = w
    net.params["conv"][1].data[...] = b
    out = net.forward()["norm"]

    conv = _correlate_valid(x.astype(np.float64), w.astype(np.float64)) + b.reshape(1, 2, 1, 1)
    # channel 0 is a Sobel response of a ramp: constant -0.8 + 0.5 = -0.3
    np.testing.assert_allclose(conv[:, 0], -0.3, atol=1e-6)
    flat = conv.reshape(2, -1)
    expected = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    np.testing.assert_allclose(out.reshape(2, -1), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out.reshape(2, -1), axis=1), 1.0, rtol=1e-5)

    dtop = np.random.RandomState(1).uniform(-1, 1, out.shape).astype(np.float32)
    net.backward(norm=dtop)
    y = expected
    dconv = (dtop.reshape(2, -1) - y * np.sum(dtop.reshape(2, -1) * y, axis=1, keepdims=True)) \
        / np.linalg.norm(flat, axis=1, keepdims=True)
    dconv = dconv.reshape(conv.shape)
    np.testing.assert_allclose(net.blobs["conv"].diff, dconv, rtol=1e-4, atol=1e-6)
    # dL/dw[o] = Σ_n,i,j dconv[n,o,i,j] · x[n, :, i:i+3, j:j+3]
    dw = np.zeros_like(w, dtype=np.float64)
    for i in range(2):
        for j in range(2):
            dw += np.tensordot(dconv[:, :, i, j], x[:, :, i:i + 3, j:j + 3], axes=([0], [0]))
    np.testing.assert_allclose(net.params["conv"][0].diff, dw, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(net.params["conv"][1].diff, dconv.sum(axis=(0, 2, 3)), rtol=1e-4, atol=1e-5)


def test_l2_normalize_gradient_by_finite_differences():
    x = np.random.RandomState(0).randn(3, 5).astype(np.float32)
    net, bottoms, tops = python_layer_net("layers.l2_normalize", "L2Normalize", [x])
    check_gradient(net, bottoms, tops)
    y, norm = l2_normalize_forward(x.astype(np.float64), 0.0)
    np.testing.assert_allclose(norm[:, 0], np.linalg.norm(x, axis=1), rtol=1e-6)


def test_python_layer_rejects_bad_param_str():
    with pytest.raises(ValueError, match=r"L2Normalize: unknown param_str key\(s\) epsilon; accepted: eps"):
        python_layer_net("layers.l2_normalize", "L2Normalize", [np.ones((2, 3), np.float32)],
                         params={"epsilon": 1})


def _small_trainable_spec(batch=4):
    n = caffe.NetSpec()
    n.data, n.label = L.DummyData(
        shape=[dict(dim=[batch, 3, 8, 8]), dict(dim=[batch])],
        data_filler=[dict(type="gaussian", std=1.0), dict(type="constant", value=1)], ntop=2)
    n.conv1 = L.Convolution(n.data, num_output=4, kernel_size=3,
                            weight_filler=dict(type="gaussian", std=0.1))
    n.norm = L.Python(n.conv1, python_param=dict(module="layers.l2_normalize", layer="L2Normalize"))
    n.fc = L.InnerProduct(n.norm, num_output=3, weight_filler=dict(type="gaussian", std=0.1))
    n.loss = L.SoftmaxWithLoss(n.fc, n.label)
    return n


def test_caffemodel_round_trip_is_bit_identical(tmp_path):
    net = net_from_spec(_small_trainable_spec(), phase=caffe.TRAIN)
    rng = np.random.RandomState(3)
    for blobs in net.params.values():
        for blob in blobs:
            blob.data[...] = rng.randn(*blob.data.shape)
    path = str(tmp_path / "w.caffemodel")
    net.save(path)
    again = net_from_spec(_small_trainable_spec(), phase=caffe.TEST, weights=path)
    assert list(again.params) == list(net.params) == ["conv1", "fc"]
    for name in net.params:
        for a, b in zip(net.params[name], again.params[name]):
            assert a.data.tobytes() == b.data.tobytes()


def test_stock_caffe_tool_trains_a_net_with_a_python_layer(tmp_path):
    """`caffe train` (the C++ tool, through the venv's wrapper) finds
    layers.l2_normalize with no PYTHONPATH set by the user."""
    (tmp_path / "net.prototxt").write_text(str(_small_trainable_spec().to_proto()))
    (tmp_path / "solver.prototxt").write_text(
        'net: "net.prototxt"\nbase_lr: 0.5\nlr_policy: "fixed"\nmomentum: 0.9\n'
        'max_iter: 30\ndisplay: 1\nsnapshot: 30\nsnapshot_prefix: "snap"\n'
        'solver_mode: CPU\nrandom_seed: 7\n')
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(GLOG_minloglevel="0", GLOG_logtostderr="1")
    proc = subprocess.run([os.path.join(VENV_BIN, "caffe"), "train", "--solver=solver.prototxt"],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"Creating layer norm", proc.stderr)
    losses = [float(v) for v in re.findall(r"Iteration \d+ .*loss = ([-\d.e]+)", proc.stderr)]
    assert len(losses) >= 30
    # constant label 1: the classifier learns it, the loss must fall
    assert losses[-1] < 0.5 * losses[0]
    assert (tmp_path / "snap_iter_30.caffemodel").is_file()
    assert (tmp_path / "snap_iter_30.solverstate").is_file()


@pytest.mark.skipif(caffe_env.cuda_device_count() > 0, reason="a GPU is present")
def test_gpu_mode_without_gpu_is_a_python_error():
    with pytest.raises(RuntimeError, match="GPU mode requested"):
        caffe_env.set_mode(gpu=0)
    # and in a fresh process it is an exception (exit 1), not Caffe's SIGABRT
    proc = subprocess.run([sys.executable, "-c", "from common import caffe_env; caffe_env.set_mode(0)"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "RuntimeError: GPU mode requested" in proc.stderr


@pytest.mark.skipif(caffe_env.cuda_device_count() == 0, reason="no GPU")
def test_gpu_forward_backward_matches_cpu():
    x = np.random.RandomState(0).randn(2, 1, 4, 4).astype(np.float32)
    results = []
    for gpu in (None, 0):
        caffe_env.set_mode(gpu)
        caffe.set_random_seed(0)
        net = _conv_python_net()
        net.params["conv"][0].data[...] = np.arange(18, dtype=np.float32).reshape(2, 1, 3, 3) / 9
        net.blobs["data"].data[...] = x
        out = net.forward()["norm"].copy()
        net.backward(norm=np.ones_like(out))
        results.append((out, net.params["conv"][0].diff.copy()))
    caffe_env.set_mode(None)
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-3, atol=1e-4)


def test_glog_level_can_be_set_back_after_init_log(capfd):
    before = caffe_env.glog_level()
    caffe_env.set_glog_level(0)
    caffe.log("visible line")
    caffe_env.set_glog_level(1)
    caffe.log("hidden line")
    caffe_env.set_glog_level(before)
    err = capfd.readouterr().err
    assert "visible line" in err and "hidden line" not in err
