"""tools.train, training/stage.py: a stage interrupted by SIGTERM or SIGKILL and
rerun ends with weights bit-identical to an uninterrupted run (the net's data
is deterministic, so Caffe's CPU solver is exactly repeatable from a
.solverstate), the log is Caffe's own, and a finished stage is skipped."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np

from common import caffe_env
import caffe
from caffe import layers as L
from training.surgery import read_blobs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_ITER = 600


def _write_stage(tmp_path):
    n = caffe.NetSpec()
    n.data, n.label = L.DummyData(shape=[dict(dim=[16, 3, 24, 24]), dict(dim=[16])],
                                  data_filler=[dict(type="constant", value=0.5),
                                               dict(type="constant", value=2)], ntop=2)
    n.conv = L.Convolution(n.data, num_output=16, kernel_size=5, weight_filler=dict(type="xavier"))
    n.relu = L.ReLU(n.conv, in_place=True)
    n.fc = L.InnerProduct(n.relu, num_output=4, weight_filler=dict(type="xavier"))
    n.loss = L.SoftmaxWithLoss(n.fc, n.label)
    (tmp_path / "net.prototxt").write_text(str(n.to_proto()))
    (tmp_path / "solver.prototxt").write_text(
        'net: "net.prototxt"\nbase_lr: 0.001\nlr_policy: "step"\ngamma: 0.1\nstepsize: 300\n'
        'momentum: 0.9\nweight_decay: 0.0005\nmax_iter: %d\ndisplay: 10\nrandom_seed: 5\n' % MAX_ITER)
    return str(tmp_path / "solver.prototxt")


def _cmd(solver, run_dir):
    return [sys.executable, "-m", "tools.train", "--solver", solver, "--run-dir", str(run_dir),
            "--snapshot-every", "50", "--no-progress"]


def _run(solver, run_dir):
    proc = subprocess.run(_cmd(solver, run_dir), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _interrupt(solver, run_dir, sig, after_iter):
    """Start a run, wait until a snapshot past `after_iter` is recorded, send sig."""
    proc = subprocess.Popen(_cmd(solver, run_dir), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = os.path.join(str(run_dir), "state.json")
    while proc.poll() is None:
        try:
            with open(state) as f:
                if json.load(f)["iter"] >= after_iter:
                    break
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(sig)
    proc.communicate(timeout=300)
    return proc.returncode


def _weights(path):
    return {name: [np.array(b.data, np.float32) for b in blobs] for name, blobs in read_blobs(path).items()}


def test_interrupted_runs_resume_to_identical_weights(tmp_path):
    solver = _write_stage(tmp_path)
    _run(solver, tmp_path / "straight")
    ref = _weights(str(tmp_path / "straight" / "final.caffemodel"))

    # SIGTERM: snapshot at the current iteration, exit 130, resume from there
    assert _interrupt(solver, tmp_path / "term", signal.SIGTERM, 100) == 130
    with open(tmp_path / "term" / "state.json") as f:
        stopped = json.load(f)["iter"]
    assert 100 <= stopped < MAX_ITER
    _run(solver, tmp_path / "term")
    # SIGKILL: nothing can be caught; resume from the last recorded snapshot
    assert _interrupt(solver, tmp_path / "kill", signal.SIGKILL, 150) == -signal.SIGKILL
    _run(solver, tmp_path / "kill")

    for run in ("term", "kill"):
        got = _weights(str(tmp_path / run / "final.caffemodel"))
        assert got.keys() == ref.keys()
        for name in ref:
            for a, b in zip(ref[name], got[name]):
                assert a.tobytes() == b.tobytes(), (run, name)
    # the weights really trained away from the first snapshot
    first = _weights(str(tmp_path / "straight" / "snap_iter_50.caffemodel"))
    assert not np.array_equal(first["fc"][0], ref["fc"][0])

    log = (tmp_path / "term" / "train.log").read_text()
    iters = [int(i) for i in re.findall(r"solver\.cpp:\d+\] Iteration (\d+) \(", log)]
    # resumed where it stopped: the logged iterations continue without a gap
    assert sorted(set(iters)) == list(range(0, MAX_ITER, 10))
    assert re.search(r"Iteration \d+, lr = 0\.0001", log)  # ×0.1 after stepsize 300

    # Caffe's own tools/extra/parse_log.py reads the log
    parser = os.path.join(caffe_env.caffe_prefix(), "extra", "parse_log.py")
    proc = subprocess.run([sys.executable, parser, "train.log", "."], cwd=str(tmp_path / "term"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = (tmp_path / "term" / "train.log.train").read_text().strip().splitlines()
    header = rows[0].split(",")
    assert header[:3] == ["NumIters", "Seconds", "LearningRate"] and "loss" in header
    parsed = [dict(zip(header, r.split(","))) for r in rows[1:]]
    assert {int(float(r["NumIters"])) for r in parsed} == set(range(0, MAX_ITER, 10))
    assert float(parsed[-1]["LearningRate"]) == 0.0001


def test_finished_stage_is_skipped(tmp_path):
    solver = _write_stage(tmp_path)
    _run(solver, tmp_path / "run")
    before = os.path.getmtime(tmp_path / "run" / "final.caffemodel")
    proc = _run(solver, tmp_path / "run")
    assert proc.stdout.strip().endswith("final.caffemodel")
    assert os.path.getmtime(tmp_path / "run" / "final.caffemodel") == before


def test_stock_caffe_trains_a_generated_geng16_solver(tmp_path):
    """`caffe train -solver <generated solver>` runs with
    the stock binary; the identity-sampled data layer and the pair layers are
    found from layers/ with no PYTHONPATH set by the user."""
    from data_prep import market1501, synthetic
    from data_prep.lmdb_builder import build_lmdb
    from networks import geng16

    tree = synthetic.generate(str(tmp_path / "syn"), num_ids=12, seed=1, quiet=True)
    split = market1501.parse(tree)
    num_ids = max(split["trials"][0]["train_labels"]) + 1
    lmdb_dir = build_lmdb(split, str(tmp_path / "train.lmdb"), 160, 64, verbose=False)
    net = geng16.geng16(base="dgdnet", num_ids=num_ids, source=lmdb_dir, k=4, m=2)
    (tmp_path / "net.prototxt").write_text(geng16.net_text(net, "dgdnet_demo"))
    (tmp_path / "solver.prototxt").write_text(geng16.solver_text("net.prototxt", 3, display=1))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(GLOG_minloglevel="0", GLOG_logtostderr="1")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "caffe"), "train",
                           "--solver=solver.prototxt"], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    python_layers = [l.name for l in geng16.net_param(net, "n").layer if l.type == "Python"]
    assert "data" in python_layers and len(python_layers) >= 3  # data, pairs, pair dropout
    for name in python_layers:
        assert "Creating layer %s\n" % name in proc.stderr
    iters = [int(i) for i in re.findall(r"solver\.cpp:\d+\] Iteration (\d+) \(", proc.stderr)]
    assert iters == [0, 1, 2]
    outputs = re.findall(r"Train net output #\d+: (\S+) = ([-\d.e+]+)", proc.stderr)
    names = {name for name, _ in outputs}
    assert len(names) >= 2 and all(np.isfinite(float(v)) for _, v in outputs)


def test_in_process_stage_logs_to_its_file_and_leaves_glog_quiet(tmp_path, capfd):
    from training.stage import train_stage
    solver = _write_stage(tmp_path)
    (tmp_path / "solver.prototxt").write_text(
        (tmp_path / "solver.prototxt").read_text().replace("max_iter: %d" % MAX_ITER, "max_iter: 20"))
    level = caffe_env.glog_level()
    train_stage(solver, str(tmp_path / "run"), snapshot_every=0, progress=False)
    assert "Iteration 10" in (tmp_path / "run" / "train.log").read_text()
    capfd.readouterr()
    caffe.Net(str(tmp_path / "net.prototxt"), caffe.TEST)  # Caffe logs INFO lines on a new net
    assert "Initializing net" not in capfd.readouterr().err
    assert caffe_env.glog_level() == level
