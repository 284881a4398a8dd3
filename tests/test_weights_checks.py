"""Every path that loads weights reads the file as a model and
checks it against the net before Caffe copies anything. Junk (a text file,
an HTML 404 page, an empty file), an unrelated model or a model of another
shape is refused in one line naming the file and the first layer that does
not fit; nothing trains from the fillers in silence."""
import os
import subprocess
import sys

import numpy as np
import pytest

from common import caffe_env, layout
import caffe
from caffe import layers as L
from tests.helpers import caffemodel_without, net_from_spec, our_lines
from evaluation import cir
from training import stage, surgery, two_step

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JUNK = {"text.caffemodel": b"these are not weights\n",
        "404.caffemodel": b"<!DOCTYPE html><html><head><title>404 Not Found</title></head>"
                          b"<body><h1>Not Found</h1></body></html>\n",
        "empty.caffemodel": b""}


def _net(fc_outputs=4):
    n = caffe.NetSpec()
    n.data, n.label = L.DummyData(shape=[dict(dim=[8, 3, 12, 12]), dict(dim=[8])],
                                  data_filler=[dict(type="gaussian", std=1),
                                               dict(type="constant", value=1)], ntop=2)
    n.conv = L.Convolution(n.data, num_output=6, kernel_size=3, weight_filler=dict(type="xavier"))
    n.fc = L.InnerProduct(n.conv, num_output=fc_outputs, weight_filler=dict(type="xavier"))
    n.loss = L.SoftmaxWithLoss(n.fc, n.label)
    return n


def _stage(tmp_path, iters=4):
    (tmp_path / "net.prototxt").write_text(str(_net().to_proto()))
    (tmp_path / "solver.prototxt").write_text(
        'net: "net.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: %d\ndisplay: 1\n'
        'random_seed: 3\n' % iters)
    return str(tmp_path / "solver.prototxt")


def _model(tmp_path, name, spec):
    path = str(tmp_path / name)
    net_from_spec(spec, caffe.TRAIN).save(path)
    return path


def _unrelated(tmp_path):
    n = caffe.NetSpec()
    n.x = L.Input(shape=dict(dim=[2, 5]))
    n.other_fc = L.InnerProduct(n.x, num_output=3)
    return _model(tmp_path, "unrelated.caffemodel", n)


def _junk(tmp_path):
    paths = []
    for name, data in JUNK.items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    return paths


def test_read_blobs_refuses_junk_that_protobuf_parses(tmp_path):
    for path in _junk(tmp_path):
        with pytest.raises(ValueError, match="^%s is not a" % path):
            surgery.read_blobs(path)


def test_train_stage_refuses_junk_and_unrelated_weights(tmp_path):
    caffe_env.set_mode(None)
    solver = _stage(tmp_path)
    for i, weights in enumerate(_junk(tmp_path)):
        with pytest.raises(ValueError, match="^%s is not a" % weights):
            stage.train_stage(solver, str(tmp_path / ("run%d" % i)), weights, progress=False)
        assert not os.path.exists(tmp_path / ("run%d" % i) / layout.FINAL)
    unrelated = _unrelated(tmp_path)
    with pytest.raises(ValueError, match="^%s fits no layer of the net.*other_fc" % unrelated):
        stage.train_stage(solver, str(tmp_path / "unrelated"), unrelated, progress=False)
    assert not os.path.exists(tmp_path / "unrelated" / layout.FINAL)


def test_train_stage_loads_the_weights_it_is_given(tmp_path):
    caffe_env.set_mode(None)
    _stage(tmp_path, iters=1)
    (tmp_path / "frozen.prototxt").write_text(
        (tmp_path / "solver.prototxt").read_text().replace("base_lr: 0.01", "base_lr: 0"))
    weights = _model(tmp_path, "init.caffemodel", _net())
    final = stage.train_stage(str(tmp_path / "frozen.prototxt"), str(tmp_path / "run"), weights,
                              progress=False)
    got, want = surgery.read_blobs(final), surgery.read_blobs(weights)
    for name in ("conv", "fc"):
        assert np.array_equal(got[name][0].data, want[name][0].data)


def test_cli_refuses_weights_of_another_shape_in_one_line(tmp_path):
    """Caffe's copy_from would CHECK-abort (exit 134, nothing on the terminal)."""
    solver = _stage(tmp_path)
    other = _model(tmp_path, "five.caffemodel", _net(fc_outputs=5))
    proc = subprocess.run([sys.executable, "-m", "tools.train", "--solver", solver, "--run-dir",
                           str(tmp_path / "run"), "--weights", other, "--no-progress"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert our_lines(proc.stderr) == [
        "error: layer 'fc' blob 0: %s have shape (5, 600), the net (4, 600)" % other]
    assert not os.path.exists(tmp_path / "run" / layout.FINAL)


def test_surgery_cli_refuses_an_unrelated_model(tmp_path):
    (tmp_path / "net.prototxt").write_text(str(_net().to_proto()))
    unrelated = _unrelated(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "tools.surgery", "--net", str(tmp_path / "net.prototxt"),
                           "--weights", unrelated, "--out", str(tmp_path / "init.caffemodel")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert our_lines(proc.stderr) == ["error: %s fits no layer of the net: it holds 1 layer(s) "
                                        "with weights (other_fc), none of them named as a layer "
                                        "of the net" % unrelated]
    assert not os.path.exists(tmp_path / "init.caffemodel")


def test_mtdnet_cir_needs_every_layer(tmp_path):
    """Scores from random fillers must not pass for a model's."""
    trunk, _, _ = cir.load_nets(size=64)
    trunk.save(str(tmp_path / "trunk.caffemodel"))
    with pytest.raises(ValueError, match="layer 'conv3' of the net has no weights in .*trunk"):
        cir.load_nets(str(tmp_path / "trunk.caffemodel"), size=64)
    with pytest.raises(ValueError, match="unrelated.caffemodel fits no layer|has no weights in"):
        cir.load_nets(_unrelated(tmp_path), size=64)
    with pytest.raises(ValueError, match="text.caffemodel is not a"):
        cir.load_nets(_junk(tmp_path)[0], size=64)
    # a classification-only model (MTDnet-cls) scores CIR; its -trp would be random fillers
    _, _, pair = cir.load_nets(size=64)
    pair.save(str(tmp_path / "cls.caffemodel"))
    cir.load_nets(str(tmp_path / "cls.caffemodel"), size=64)
    with pytest.raises(ValueError, match="layer 'feat' of the net has no weights in .*cls"):
        cir.load_nets(str(tmp_path / "cls.caffemodel"), size=64, ranking=True)


def test_fine_tuning_init_needs_the_whole_base(tmp_path):
    """Geng16 transfers replace the cls_* and PV heads only."""
    assert not two_step.transferred("cls_main_12") and not two_step.transferred("main/pv_fc")
    assert two_step.transferred("conv1") and two_step.transferred("loss1/fc")
    n = _net()
    net = net_from_spec(n, caffe.TRAIN)
    model = _model(tmp_path, "full.caffemodel", n)
    no_conv = caffemodel_without(model, str(tmp_path / "no_conv.caffemodel"),
                                 lambda layer: layer.name == "conv")
    with pytest.raises(ValueError, match="layer 'conv' of the net has no weights in .*no_conv"):
        surgery.load_weights(net, no_conv, two_step.transferred)
    # a head the transfer replaces may be missing
    no_fc = caffemodel_without(model, str(tmp_path / "no_fc.caffemodel"),
                               lambda layer: layer.name == "fc")
    report = surgery.load_weights(net, no_fc, lambda name: name != "fc")
    assert report["copied"] == ["conv"] and report["initialised"] == ["fc"]


def _one_line_error(module, *argv):
    proc = subprocess.run([sys.executable, "-m", module] + list(argv), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == "", (proc.returncode, proc.stderr)
    lines = our_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr  # no traceback
    return lines[0]


def test_weight_tools_report_errors_in_one_line(tmp_path):
    junk = _junk(tmp_path)[0]
    unrelated = _unrelated(tmp_path)
    missing = str(tmp_path / "missing.prototxt")
    assert _one_line_error("tools.surgery", "--net", missing, "--weights", unrelated, "--out",
                           str(tmp_path / "o.caffemodel")) == "error: net prototxt not found: %s" % missing
    assert _one_line_error("tools.mtdnet_init", "--net", missing, "--caffenet", junk, "--out",
                           str(tmp_path / "o.caffemodel")).startswith("error: %s is not a" % junk)
    lmdb = str(tmp_path / "q.lmdb")
    assert _one_line_error("tools.mtdnet_cir", "--weights", junk, "--query", lmdb, "--gallery",
                           lmdb).startswith("error: %s is not a" % junk)
    assert _one_line_error("tools.mtdnet_cir", "--weights", unrelated, "--query", lmdb,
                           "--gallery", lmdb) == "error: LMDB directory not found: %s" % lmdb
