"""tools.train, training/stage.py: inputs that would make training
meaningless are refused before the first iteration, a non-finite loss
stops the run keeping the last good snapshot, and every failure of the
command, Caffe's own aborts included, ends in one `error:` line."""
import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from common import caffe_env, layout
import caffe
from caffe import layers as L
from data_prep.lmdb_builder import build_lmdb
from data_prep.split_format import validate_split
from tests.helpers import our_lines
from training import interrupts, stage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDS = 6  # identities of the LMDB: labels 0..5


@pytest.fixture(scope="module")
def lmdb_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("labels")
    images = []
    for i in range(2 * IDS):
        rgb = np.random.RandomState(i).randint(0, 256, (8, 8, 3)).astype(np.uint8)
        Image.fromarray(rgb).save(str(root / ("%d.png" % i)))
        images.append({"path": "%d.png" % i, "pid": 1 + i // 2, "cam": 1 + i % 2, "set": "train"})
    split = validate_split({"format": "reid-split/1", "dataset": "t", "root": str(root),
                            "images": images,
                            "trials": [{"name": "t0", "train": list(range(2 * IDS)),
                                        "train_labels": [i // 2 for i in range(2 * IDS)]}]})
    return build_lmdb(split, str(root / "train.lmdb"), 8, 8, verbose=False)


def _write(tmp_path, net, max_iter=2, base_lr=0.01):
    (tmp_path / "net.prototxt").write_text(str(net.to_proto()))
    (tmp_path / "solver.prototxt").write_text(
        'net: "net.prototxt"\nbase_lr: %g\nlr_policy: "fixed"\nmax_iter: %d\ndisplay: 1\n'
        'random_seed: 1\n' % (base_lr, max_iter))
    return str(tmp_path / "solver.prototxt")


def _classifier(source, num_output):
    n = caffe.NetSpec()
    n.data, n.label = L.Python(ntop=2, python_param=dict(
        module="layers.identity_sampled_data", layer="IdentitySampledData",
        param_str=json.dumps(dict(source=source, k=2, m=2, crop=6))))
    n.fc = L.InnerProduct(n.data, num_output=num_output, weight_filler=dict(type="xavier"))
    n.relu = L.ReLU(n.fc, in_place=True)  # in place: the loss still reads the classifier
    n.loss = L.SoftmaxWithLoss(n.fc, n.label)
    return n


def _cli(solver, run_dir, *extra, timeout=120):
    return subprocess.run([sys.executable, "-m", "tools.train", "--solver", solver, "--run-dir",
                           str(run_dir), "--no-progress"] + list(extra),
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_labels_beyond_a_classifier_are_refused_before_training(tmp_path, lmdb_dir):
    caffe_env.set_mode(None)
    solver = _write(tmp_path, _classifier(lmdb_dir, IDS - 2))
    with pytest.raises(ValueError, match=r"LMDB %s has label 5, beyond the 4 outputs of layer 'fc' "
                                         r"\(the classifier of loss 'loss'\): it needs num_output "
                                         r">= 6" % re.escape(lmdb_dir)):
        stage.train_stage(solver, str(tmp_path / "run"), progress=False)
    assert not os.path.exists(tmp_path / "run" / layout.LOG)  # not started
    # as many outputs as identities: it trains
    solver = _write(tmp_path, _classifier(lmdb_dir, IDS))
    assert os.path.isfile(stage.train_stage(solver, str(tmp_path / "ok"), progress=False))


def _diverging():
    """A regression whose loss grows ×9 an iteration: infinite at iteration 41."""
    n = caffe.NetSpec()
    n.data, n.target = L.DummyData(shape=[dict(dim=[4, 3]), dict(dim=[4, 1])],
                                   data_filler=[dict(type="constant", value=1),
                                                dict(type="constant", value=2)], ntop=2)
    n.fc = L.InnerProduct(n.data, num_output=1, weight_filler=dict(type="constant", value=0))
    n.loss = L.EuclideanLoss(n.fc, n.target)
    return n


def test_a_non_finite_loss_stops_and_keeps_the_last_good_snapshot(tmp_path):
    solver = _write(tmp_path, _diverging(), max_iter=100, base_lr=1)
    proc = _cli(solver, tmp_path / "run", "--snapshot-every", "10")
    assert proc.returncode == 1
    assert our_lines(proc.stderr) == [
        "error: loss output 'loss' is inf at iteration 41; training stopped, the last good "
        "snapshot, iteration 40, is kept (%s)" % (tmp_path / "run" / layout.LOG)]
    with open(tmp_path / "run" / layout.STATE) as f:
        assert json.load(f)["iter"] == 40
    assert not os.path.exists(tmp_path / "run" / layout.FINAL)
    assert not os.path.exists(tmp_path / "run" / "snap_iter_41.caffemodel")


def test_numeric_options_are_refused_in_one_line(tmp_path):
    n = _diverging()
    solver = _write(tmp_path, n)
    proc = _cli(solver, tmp_path / "run", "--snapshot-every", "-5", timeout=60)  # looped forever
    assert proc.returncode == 2 and our_lines(proc.stderr) == [
        "error: --snapshot-every -5: must be an integer >= 0 (0: snapshots only on interruption "
        "and at the end)"]
    solver = _write(tmp_path, n, max_iter=0)
    proc = _cli(solver, tmp_path / "run")
    assert proc.returncode == 2 and our_lines(proc.stderr) == [
        "error: solver %s: max_iter 0: must be >= 1 (a stage of no iterations would save "
        "untrained weights)" % solver]
    assert not os.path.exists(tmp_path / "run" / layout.FINAL)


def test_a_caffe_abort_is_one_line_naming_its_reason(tmp_path):
    """glog's CHECK failure goes to train.log and kills the process (exit 134,
    an empty terminal before): the command reports Caffe's line."""
    n = caffe.NetSpec()
    n.data, n.label = L.DummyData(shape=[dict(dim=[8, 3]), dict(dim=[4])], ntop=2)
    n.fc = L.InnerProduct(n.data, num_output=2)
    n.loss = L.SoftmaxWithLoss(n.fc, n.label)  # 4 labels for 8 predictions
    proc = _cli(_write(tmp_path, n), tmp_path / "run")
    log = tmp_path / "run" / layout.LOG
    assert proc.returncode == 1, proc.stderr
    lines = our_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: Caffe aborted: Check failed: "), lines
    assert "(8 vs. 4)" in lines[0]
    assert lines[0].endswith("(%s)" % log)


def test_input_errors_are_one_line(tmp_path, lmdb_dir):
    (tmp_path / "bad.prototxt").write_text("net: 'net.prototxt'\nmax_iter: two\n")
    proc = _cli(str(tmp_path / "bad.prototxt"), tmp_path / "run")
    assert proc.returncode == 2 and len(our_lines(proc.stderr)) == 1
    assert our_lines(proc.stderr)[0].startswith("error: solver file %s does not parse: " % (tmp_path / "bad.prototxt"))

    solver = _write(tmp_path, _classifier(str(tmp_path / "missing.lmdb"), IDS))
    proc = _cli(solver, tmp_path / "run")
    assert proc.returncode == 2
    assert our_lines(proc.stderr) == ["error: LMDB directory not found: %s"
                                        % (tmp_path / "missing.lmdb")]

    n = _classifier(lmdb_dir, IDS)
    n.data.fn.params["python_param"]["param_str"] = json.dumps(dict(source=lmdb_dir, k=0))
    proc = _cli(_write(tmp_path, n), tmp_path / "run")
    assert proc.returncode == 2 and len(our_lines(proc.stderr)) == 1, proc.stderr
    assert our_lines(proc.stderr)[0].startswith("error: ") and "'k'" in proc.stderr, proc.stderr


def test_signals_wait_while_a_snapshot_is_written():
    """A second Ctrl-C during the interruption's snapshot cannot cut it short."""
    with pytest.raises(KeyboardInterrupt):
        with interrupts.signals_held():
            os.kill(os.getpid(), signal.SIGINT)
            done = True  # reached: the signal waited for the block's end
    assert done
    with interrupts.signals_held(swallow=True):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
