"""`python -m tools.train --gpu/--gpus` (training/multi_gpu.py), on the CPU: parsing
and refusals, the identity-sampled data layer's shards for two ranks, and
the processes' stop agreement and supervision. The NCCL training itself
needs GPUs and is not run here."""
import json
import multiprocessing
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import types

import numpy as np
import pytest
from PIL import Image

from common import caffe_env
from common.config import ROOT
import caffe
from caffe import layers as L
from caffe.proto import caffe_pb2
from data_prep.lmdb_builder import build_lmdb, read_index
from data_prep.split_format import validate_split
from layers import identity_sampled_data as isd
from tests.test_train import _write_stage
from tools import train
from training import multi_gpu, stage
from training.run_dir import LOCK
from training.multi_gpu import Refused

# --- the --gpus list and the refusals --------------------------------------


def test_parse_and_validate_gpus():
    assert multi_gpu.parse_gpus("0,1") == [0, 1]
    assert multi_gpu.parse_gpus("3, 1,2") == [3, 1, 2]
    assert multi_gpu.parse_gpus("2") == [2]
    for text, message in [("0,0", "--gpus 0,0: device 0 is listed twice"),
                          ("1,0,1", "device 1 is listed twice"),
                          ("0,-1", "-1 is not a device id"),
                          ("0,x", "--gpus 0,x: expected device ids separated by commas"),
                          ("0,", "expected device ids"), ("", "expected device ids")]:
        with pytest.raises(ValueError, match=message):
            multi_gpu.parse_gpus(text)
    with pytest.raises(ValueError, match="here: no device ids"):
        multi_gpu.validate_gpus([], "here")
    with pytest.raises(ValueError, match="True is not a device id"):
        multi_gpu.validate_gpus([0, True], "here")


def test_check_devices():
    multi_gpu.check_devices([1, 0], 2)
    with pytest.raises(Refused, match=r"^--gpus 0,2: no GPU 2; the CUDA driver reports 2 GPU\(s\)$"):
        multi_gpu.check_devices([0, 2], 2)
    with pytest.raises(Refused, match="no GPU 0; the CUDA driver reports 0 GPU"):
        multi_gpu.check_devices([0, 1], 0)


def test_check_build(monkeypatch):
    if caffe_env.built_with_cuda():
        pytest.skip("this Caffe is a CUDA build")
    with pytest.raises(Refused, match="--gpus 0,1: this Caffe .* is a CPU_ONLY build"):
        multi_gpu.check_build([0, 1])
    # past the CUDA check, this build's pycaffe (USE_NCCL off) is told apart
    monkeypatch.setattr(caffe_env, "built_with_cuda", lambda: True)
    with pytest.raises(Refused, match="--gpus 0,1: this Caffe .* was built without NCCL"):
        multi_gpu.check_build([0, 1])

    class WithNccl:
        new_uid = staticmethod(lambda: b"")
    monkeypatch.setattr(caffe, "NCCL", WithNccl)
    monkeypatch.setattr(caffe_env, "cuda_device_count", lambda: 1)
    with pytest.raises(Refused, match="no GPU 1; the CUDA driver reports 1 GPU"):
        multi_gpu.check_build([0, 1])
    multi_gpu.check_build([0])


def test_train_stage_refuses_before_starting(tmp_path):
    if caffe_env.built_with_cuda():
        pytest.skip("this Caffe is a CUDA build")
    solver = _write_stage(tmp_path)
    run_dir = tmp_path / "run"
    with pytest.raises(Refused, match="--gpus 0,1: this Caffe .* is a CPU_ONLY build"):
        stage.train_stage(solver, str(run_dir), gpus=[0, 1])
    assert os.listdir(run_dir) == [LOCK]  # nothing staged, no log: nothing started
    with pytest.raises(Refused, match="GPU mode requested but this Caffe .* is a CPU_ONLY build"):
        stage.train_stage(solver, str(run_dir), gpus=[0])     # one id: the --gpu path
    with pytest.raises(Refused, match="GPU mode requested"):
        stage.train_stage(solver, str(run_dir), gpu=0)
    with pytest.raises(ValueError, match="give gpu or gpus, not both"):
        stage.train_stage(solver, str(run_dir), gpu=0, gpus=[0, 1])
    with pytest.raises(ValueError, match=r"gpus=\[1, 1\]: device 1 is listed twice"):
        stage.train_stage(solver, str(run_dir), gpus=[1, 1])


def test_cli_refuses_in_one_line(tmp_path, capsys):
    if caffe_env.built_with_cuda():
        pytest.skip("this Caffe is a CUDA build")
    solver = _write_stage(tmp_path)
    for device, message in [("--gpus=0,1", "error: --gpus 0,1: this Caffe "),
                            ("--gpu=0", "error: GPU mode requested but this Caffe ")]:
        proc = subprocess.run([sys.executable, "-m", "tools.train", "--solver", solver, "--run-dir",
                               str(tmp_path / "run"), device, "--no-progress"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1 and proc.stdout == ""
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(message) and "CPU_ONLY" in lines[0], proc.stderr
    for argv, message in [
            (["--gpus", "0,0"], "argument --gpus: --gpus 0,0: device 0 is listed twice"),
            (["--gpu", "0", "--gpus", "0,1"], "argument --gpus: not allowed with argument --gpu")]:
        with pytest.raises(SystemExit) as exit_info:
            train.main(["--solver", solver, "--run-dir", str(tmp_path / "run")] + argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


# --- sharding the identity-sampled data -----------------------------------

SIZE = 8
PIDS = [3, 3, 5, 5, 5, 7, 8, 8, 9, 9, 12, 12, 14, 15, 15, 15, 20, 20, 21, 21]   # 7, 14: one image
K, M = 3, 2


@pytest.fixture(scope="module")
def lmdb_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    images = []
    for i, pid in enumerate(PIDS):
        rgb = np.random.RandomState(i).randint(0, 256, (SIZE, SIZE, 3)).astype(np.uint8)
        Image.fromarray(rgb).save(str(root / ("%d.png" % i)))
        images.append({"path": "%d.png" % i, "pid": pid, "cam": 1 + i % 2, "set": "train"})
    labels = [sorted(set(PIDS)).index(p) for p in PIDS]
    split = validate_split({"format": "reid-split/1", "dataset": "t", "root": str(root), "images": images,
                            "trials": [{"name": "t0", "train": list(range(len(PIDS))),
                                        "train_labels": labels}]})
    return build_lmdb(split, str(root / "train.lmdb"), SIZE, SIZE, verbose=False)


def _isd_net(source, **params):
    n = caffe.NetSpec()
    n.data, n.label = L.Python(ntop=2, python_param=dict(
        module="layers.identity_sampled_data", layer="IdentitySampledData",
        param_str=json.dumps(dict(source=source, k=K, m=M, crop=6, **params))))
    return n


def _labels_drawn(net, batches):
    """Labels of `batches` forward passes, each checked to be K identities × M images."""
    drawn = set()
    for _ in range(batches):
        net.forward()
        label = net.blobs["label"].data.copy()
        assert net.blobs["data"].data.shape == (K * M, 3, 6, 6)
        per_id = label.reshape(K, M)
        assert np.all(per_id == per_id[:, :1]) and len(set(per_id[:, 0])) == K
        drawn |= set(label.astype(int).tolist())
    net.layers[0].close()
    return drawn


def _assert_partition(lmdb_dir, drawn):
    labels = read_index(lmdb_dir)["label"]
    identities = set(range(len(set(PIDS))))
    assert drawn[0].isdisjoint(drawn[1])
    assert drawn[0] | drawn[1] == identities
    # what the ranks drew is what the pre-launch check computes
    shards = multi_gpu.check_shards(labels, 2, K, "t")
    assert [set(s.tolist()) for s in shards] == drawn


def test_layers_of_two_ranks_draw_disjoint_covering_shards(lmdb_dir):
    nets = [caffe_env.net_from_spec(_isd_net(lmdb_dir, rank=r, count=2, seed=4), caffe.TRAIN)
            for r in range(2)]
    _assert_partition(lmdb_dir, [_labels_drawn(net, 12) for net in nets])


def test_layers_shard_by_caffe_solver_rank(lmdb_dir):
    """The default path of a --gpus run: rank and count from Caffe's own
    set_solver_rank/set_solver_count, as multi_gpu.Team.setup_caffe sets them."""
    drawn = []
    try:
        caffe.set_solver_count(2)
        caffe.set_multiprocess(True)   # Caffe allows Python layers with solver_count > 1 only so
        for rank in range(2):
            caffe.set_solver_rank(rank)
            drawn.append(_labels_drawn(caffe_env.net_from_spec(_isd_net(lmdb_dir, seed=4), caffe.TRAIN), 12))
    finally:
        caffe.set_solver_rank(0)
        caffe.set_solver_count(1)
        caffe.set_multiprocess(False)
    _assert_partition(lmdb_dir, drawn)


def test_check_shards(monkeypatch):
    labels = [4, 0, 0, 1, 2, 2, 3, -1, 5, 6, 6, 6]
    shards = multi_gpu.check_shards(labels, 3, 2, "net.prototxt: layer 'data'")
    assert [s.tolist() for s in shards] == [[0, 3, 6], [1, 4], [2, 5]]
    with pytest.raises(Refused, match="^net.prototxt: layer 'data': 7 identities leave rank 3 of 4 "
                                      "only 1, fewer than k=2$"):
        multi_gpu.check_shards(labels, 4, 2, "net.prototxt: layer 'data'")
    # the check fails where shards would overlap (every rank drawing everyone)
    monkeypatch.setattr(isd, "shard_identities", lambda labels, rank, count: np.arange(7))
    with pytest.raises(Refused, match="shards of 3 ranks are not a partition of the 7 identities"):
        multi_gpu.check_shards(labels, 3, 2, "w")


def _solver_for(tmp_path, netspec):
    path = tmp_path / "net.prototxt"
    path.write_text(str(netspec.to_proto()))
    return caffe_pb2.SolverParameter(net=str(path)), str(path)


def test_check_shardable(tmp_path, lmdb_dir):
    n = _isd_net(lmdb_dir)
    n.fc = L.InnerProduct(n.data, num_output=2)
    param, path = _solver_for(tmp_path, n)
    multi_gpu.check_shardable(param, 2)
    with pytest.raises(Refused, match="10 identities leave rank 0 of 5 only 2, fewer than k=3"):
        multi_gpu.check_shardable(param, 5)

    param, _ = _solver_for(tmp_path, _isd_net(lmdb_dir, rank=0, count=2))
    with pytest.raises(Refused, match=r"layer 'data' \(layers.identity_sampled_data.IdentitySampledData\) "
                                      "fixes rank/count in its param_str"):
        multi_gpu.check_shardable(param, 2)

    n = _isd_net(lmdb_dir)
    n.pairs = L.Python(ntop=1, python_param=dict(module="layers.triplet_data", layer="TripletData",
                                                  param_str=json.dumps(dict(source=lmdb_dir))))
    param, path = _solver_for(tmp_path, n)
    with pytest.raises(Refused, match="^%s: layer 'pairs' \\(layers.triplet_data.TripletData\\) does not "
                                      "shard its data by solver rank, so 2 GPUs would train on the same "
                                      "samples$" % re.escape(path)):
        multi_gpu.check_shardable(param, 2)

    # a TEST-only data layer does not feed the training
    n = _isd_net(lmdb_dir)
    n.pairs = L.Python(ntop=1, include=dict(phase=caffe.TEST), python_param=dict(
        module="layers.triplet_data", layer="TripletData", param_str=json.dumps(dict(source=lmdb_dir))))
    multi_gpu.check_shardable(_solver_for(tmp_path, n)[0], 2)


# --- processes: the plan, the stop agreement, supervision -----------------

def test_make_teams():
    teams = multi_gpu.make_teams([3, 1], b"uid", multiprocessing.get_context("spawn"))
    assert [(t.rank, t.device, t.root, t.count, t.gpus) for t in teams] == [
        (0, 3, True, 2, [3, 1]), (1, 1, False, 2, [3, 1])]
    assert teams[0].stop is teams[1].stop and teams[0].barrier is teams[1].barrier


class _SignalAfterFirstRead:
    """A stop flag that a signal sets just after its first read once armed:
    a reader before that moment and one after it see different values."""

    def __init__(self):
        self.armed, self._value, self.lock = False, 0, threading.Lock()

    @property
    def value(self):
        with self.lock:
            value = self._value
            self._value |= self.armed
            return value


def test_should_stop_is_one_decision_for_all_ranks():
    """Only rank 0's reading of the flag counts, so ranks never disagree on
    the boundary to stop at (those that went on would wait forever in an
    all-reduce); threads stand in for the processes."""
    stop, decision = _SignalAfterFirstRead(), types.SimpleNamespace(value=0)
    barrier = threading.Barrier(3, timeout=10)
    teams = [multi_gpu.Team(rank, [0, 1, 2], b"", stop, decision, barrier) for rank in range(3)]
    stopped_at, errors = {}, []

    def run(team):
        try:
            for chunk in range(1, 20):
                time.sleep(0.01)
                if team.root and chunk == 5:
                    stop.armed = True
                if team.should_stop():
                    stopped_at[team.rank] = chunk
                    return
        except threading.BrokenBarrierError as err:
            errors.append(err)

    threads = [threading.Thread(target=run, args=(team,)) for team in teams]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and stopped_at == {0: 6, 1: 6, 2: 6}


def _chunks_until_stopped(team, out_dir, signal_at):
    """A stand-in for training.loop.train's loop: chunks of uneven length, the
    stop agreement at each boundary. Each rank writes how many chunks it ran."""
    rng = random.Random(team.rank)
    chunks, deadline = 0, time.time() + 60
    while time.time() < deadline:
        time.sleep(rng.uniform(0, 0.01))
        chunks += 1
        if chunks == signal_at and team.rank == team.count - 1:
            os.kill(os.getpid(), signal.SIGTERM)   # to one rank only, mid-chunk
        if team.should_stop():
            break
        if chunks == 1:
            open(os.path.join(out_dir, "rank%d.running" % team.rank), "w").close()
    with open(os.path.join(out_dir, "rank%d" % team.rank), "w") as f:
        f.write(str(chunks))
    raise SystemExit(multi_gpu.STOPPED)


def _stopped(team):
    """A stand-in for a rank whose training loop stopped (training.loop.train)."""
    team.should_stop()
    raise multi_gpu.Stopped()


def _fail_on_rank_1(team):
    if team.rank == 1:
        raise RuntimeError("broken rank")
    team.should_stop()   # waits for rank 1 forever


def _wait_for(paths, timeout=120):
    deadline = time.time() + timeout
    while not all(os.path.exists(p) for p in paths):
        assert time.time() < deadline, "timed out waiting for %s" % paths
        time.sleep(0.05)


def _counts(out_dir, ranks):
    return [int((out_dir / ("rank%d" % r)).read_text()) for r in range(ranks)]


def test_a_signal_to_one_rank_stops_all_at_one_boundary(tmp_path):
    status = multi_gpu.launch(_chunks_until_stopped, (str(tmp_path), 20), [0, 1, 2], b"", "train.log")
    assert status == multi_gpu.STOPPED
    counts = _counts(tmp_path, 3)
    # rank 0 reads the flag at the boundary the signal preceded, or the next
    assert len(set(counts)) == 1 and counts[0] in (20, 21), counts


def test_ranks_that_raise_stopped_end_the_run_as_stopped():
    """A rank's loop ends in training's Stopped exception: the rank process
    exits 0 and says so in the team's flag, and launch returns STOPPED."""
    assert multi_gpu.launch(_stopped, (), [0, 1], b"", "train.log") == multi_gpu.STOPPED


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_a_signal_to_the_parent_stops_all_ranks(tmp_path, sig):
    """Ctrl-C or a scheduler's SIGTERM reaches the launching process; when
    it is killed outright, the ranks get SIGTERM from the kernel."""
    script = ("import sys\n"
              "from training import multi_gpu\n"
              "from tests.test_multi_gpu import _chunks_until_stopped\n"
              "if __name__ == '__main__':\n"
              "    sys.exit(multi_gpu.launch(_chunks_until_stopped, (%r, 0), [0, 1], b'', 'log'))\n"
              % str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    _wait_for([str(tmp_path / ("rank%d.running" % r)) for r in range(2)])
    proc.send_signal(sig)
    assert proc.wait(timeout=120) == (-sig if sig == signal.SIGKILL else multi_gpu.STOPPED)
    _wait_for([str(tmp_path / ("rank%d" % r)) for r in range(2)])
    counts = _counts(tmp_path, 2)
    assert counts[0] == counts[1], counts


def test_a_failed_rank_ends_the_run(tmp_path):
    start = time.time()
    with pytest.raises(RuntimeError, match=r"^rank 1 \(GPU 5\) failed with exit status 1; its error is "
                                           r"above or in x/train.log$"):
        multi_gpu.launch(_fail_on_rank_1, (), [4, 5], b"", "x/train.log")
    assert time.time() - start < 60
