"""tools.train, training/stage.py: one run directory holds one run. A second
run into a held directory is refused naming the holder; a finished or
interrupted stage rerun with another solver, net, seed or initial weights is
refused naming the first difference, or trained afresh when asked; a
directory moved after a SIGKILL resumes from its own snapshots to the
weights of an uninterrupted run, and snapshots no record names are removed."""
import json
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from common import caffe_env, layout
from common.atomic import Stale
import caffe
from caffe import layers as L
from training import stage
from training.surgery import read_blobs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _stage(tmp_path, max_iter=20, name="solver.prototxt", seed=5, fc=4):
    n = caffe.NetSpec()
    n.data, n.label = L.DummyData(shape=[dict(dim=[8, 3, 12, 12]), dict(dim=[8])],
                                  data_filler=[dict(type="constant", value=0.5),
                                               dict(type="constant", value=2)], ntop=2)
    n.conv = L.Convolution(n.data, num_output=8, kernel_size=3, weight_filler=dict(type="xavier"))
    n.fc = L.InnerProduct(n.conv, num_output=fc, weight_filler=dict(type="xavier"))
    n.loss = L.SoftmaxWithLoss(n.fc, n.label)
    (tmp_path / ("net%d.prototxt" % fc)).write_text(str(n.to_proto()))
    (tmp_path / name).write_text(
        'net: "net%d.prototxt"\nbase_lr: 0.01\nmomentum: 0.9\nlr_policy: "fixed"\nmax_iter: %d\n'
        'display: 5\nrandom_seed: %d\n' % (fc, max_iter, seed))
    return str(tmp_path / name)


def _weights(path):
    return {k: [np.array(b.data, np.float32).tobytes() for b in v]
            for k, v in read_blobs(path).items()}


def _cmd(solver, run_dir, *extra):
    return [sys.executable, "-m", "tools.train", "--solver", solver, "--run-dir", str(run_dir),
            "--no-progress"] + list(extra)


def test_a_second_run_into_a_held_directory_is_refused_naming_the_holder(tmp_path):
    run = tmp_path / "run"
    first = subprocess.Popen(_cmd(_stage(tmp_path, max_iter=10 ** 7), run), cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(run / layout.LOG):  # the lock is taken before the log starts
            assert first.poll() is None
            time.sleep(0.01)
        proc = subprocess.run(_cmd(_stage(tmp_path, seed=2, name="seed2.prototxt"), run),
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
        m = re.match(r"error: run directory %s is in use by another training run \(PID (\d+)\); "
                     r"wait for it to end or choose another run directory$" % re.escape(str(run)),
                     proc.stderr)
        assert m, proc.stderr
        with open("/proc/%d/task/%d/children" % (first.pid, first.pid)) as f:
            assert int(m.group(1)) in [int(p) for p in f.read().split()]  # the first's stage
        assert "random_seed: 5" in (run / "solver.prototxt").read_text()  # the second wrote nothing
    finally:
        first.terminate()
        first.wait(timeout=60)
    assert first.returncode == 130  # the first stopped on its own terms, snapshot saved


def test_a_rerun_that_differs_is_refused_or_recomputed(tmp_path):
    caffe_env.set_mode(None)
    run = str(tmp_path / "run")
    final = stage.train_stage(_stage(tmp_path), run, progress=False)
    made = _weights(final)
    assert stage.train_stage(_stage(tmp_path), run, progress=False) == final  # the same run
    with pytest.raises(Stale, match=r'run was made with solver line \d+ = "max_iter: 20", this '
                                    r'run has "max_iter: 30": rerun with --recompute'):
        stage.train_stage(_stage(tmp_path, max_iter=30), run, progress=False)
    with pytest.raises(Stale, match='"random_seed: 5", this run has "random_seed: 6"'):
        stage.train_stage(_stage(tmp_path), run, seed=6, progress=False)
    with pytest.raises(Stale, match=r'made with net line \d+ = "num_output: 4", this run has '
                                    r'"num_output: 5"'):
        stage.train_stage(_stage(tmp_path, fc=5), run, progress=False)
    with pytest.raises(Stale, match='made with weights = null, this run has "[0-9a-f]{40}"'):
        stage.train_stage(_stage(tmp_path), run, weights=final, progress=False)
    assert _weights(final) == made
    # asked to recompute: trained afresh, 30 iterations now
    stage.train_stage(_stage(tmp_path, max_iter=30), run, progress=False, recompute=True)
    with open(os.path.join(run, layout.STATE)) as f:
        assert json.load(f)["iter"] == 30
    assert _weights(final) != made
    # an interrupted stage is held to its record too (a resume would mix two runs)
    os.remove(final)
    with pytest.raises(Stale, match="max_iter: 30"):
        stage.train_stage(_stage(tmp_path, max_iter=40), run, progress=False)


def test_cli_refuses_a_stale_stage_and_recomputes_when_asked(tmp_path):
    run = tmp_path / "run"
    subprocess.run(_cmd(_stage(tmp_path), run), cwd=ROOT, check=True, capture_output=True,
                   timeout=120)
    longer = _stage(tmp_path, max_iter=25, name="longer.prototxt")
    proc = subprocess.run(_cmd(longer, run), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert re.match(r'error: %s was made with solver line \d+ = "max_iter: 20", this run has '
                    r'"max_iter: 25"' % re.escape(str(run)), proc.stderr), proc.stderr
    proc = subprocess.run(_cmd(longer, run, "--recompute"), cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with open(run / layout.STATE) as f:
        assert json.load(f)["iter"] == 25


def _killed_after(solver, run_dir, after_iter):
    """SIGKILL the command (and with it the stage's process) once a snapshot
    past `after_iter` is recorded."""
    proc = subprocess.Popen(_cmd(solver, run_dir, "--snapshot-every", "20"), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = os.path.join(str(run_dir), layout.STATE)
    while proc.poll() is None:
        try:
            with open(state) as f:
                if json.load(f)["iter"] >= after_iter:
                    break
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.kill()
    proc.wait(timeout=60)


def test_a_moved_run_directory_resumes_from_its_own_snapshots(tmp_path):
    solver = _stage(tmp_path, max_iter=400)
    subprocess.run(_cmd(solver, tmp_path / "straight", "--snapshot-every", "20"), cwd=ROOT,
                   check=True, capture_output=True, timeout=300)
    _killed_after(solver, tmp_path / "killed", 60)
    with open(tmp_path / "killed" / layout.STATE) as f:
        state = json.load(f)
    assert state["caffemodel"] == "snap_iter_%d.caffemodel" % state["iter"]  # names, not paths
    # what a SIGKILL during Caffe's snapshot leaves: files no record names
    (tmp_path / "killed" / "snap_iter_99999.caffemodel").write_bytes(b"half written")
    os.rename(tmp_path / "killed", tmp_path / "moved")
    proc = subprocess.run(_cmd(solver, tmp_path / "moved", "--snapshot-every", "20"), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert _weights(str(tmp_path / "moved" / layout.FINAL)) == _weights(
        str(tmp_path / "straight" / layout.FINAL))
    assert not os.path.exists(tmp_path / "moved" / "snap_iter_99999.caffemodel")
    # a copy resumes from its own snapshots, not the original's
    shutil.copytree(str(tmp_path / "moved"), str(tmp_path / "copy"))
    os.remove(tmp_path / "copy" / layout.FINAL)
    shutil.rmtree(str(tmp_path / "moved"))
    proc = subprocess.run(_cmd(solver, tmp_path / "copy"), cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
