"""The GPU against CPU mode from the same weights and batch: a few training
iterations of Geng16 (GoogLeNet, six losses, through its data layer) and of
MTDnet, feature extraction, and the refusal of a device that is not there.

They run where the CUDA driver reports a GPU (device 0, tools/gpu_check.sh
on a GPU machine); REID_TEST_DEVICE=cpu puts the CPU in the GPU's place (the
GPU kit's rehearsal without a GPU: the same code, and an exact match);
otherwise they are skipped."""
import os
import subprocess
import sys

import numpy as np
import pytest

from common import caffe_env
import caffe
from data_prep import market1501, synthetic
from data_prep.lmdb_builder import build_lmdb
from data_prep.split_format import save_split
from evaluation import features
from networks import geng16, mtdnet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.environ.get("REID_TEST_DEVICE") == "cpu":
    DEVICE = None
elif caffe_env.cuda_device_count() > 0:
    DEVICE = 0
else:
    DEVICE = None
    pytestmark = pytest.mark.skip(reason="no GPU (REID_TEST_DEVICE=cpu runs these with the CPU in its place)")

ITERS = 3
# float32 sums in another order (cuBLAS, Caffe's CUDA kernels) over a few
# iterations: relative differences of order 1e-6 per layer, far under these.
RTOL, ATOL = 1e-3, 1e-4


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu")
    split = market1501.parse(synthetic.generate(str(tmp / "tree"), num_ids=16, seed=0, quiet=True))
    split_path = str(tmp / "split.json")
    save_split(split, split_path)
    return {"tmp": tmp, "split": split, "split_path": split_path,
            "num_ids": max(split["trials"][0]["train_labels"]) + 1,
            "lmdb_256": build_lmdb(split, str(tmp / "train_256.lmdb"), 256, 256, verbose=False),
            "lmdb_160": build_lmdb(split, str(tmp / "train_160.lmdb"), 160, 64, verbose=False),
            "deploy": _googlenet_deploy(tmp)}


def _googlenet_deploy(tmp):
    """GoogLeNet's deploy net and the weights its fillers give (seeded)."""
    deploy, weights = str(tmp / "deploy.prototxt"), str(tmp / "deploy.caffemodel")
    with open(deploy, "w") as f:
        f.write(str(geng16.deploy(base="googlenet", batch=1).to_proto()))
    caffe.set_random_seed(0)
    caffe.Net(deploy, caffe.TEST).save(weights)
    return deploy, weights


def without_caffe_dropout(param):
    """Caffe's Dropout draws its masks from cuRAND on the GPU and from Boost
    on the CPU; at ratio 0 both keep every unit. The pairwise-consistent
    dropout (a Python layer, NumPy's generator in both modes) stays."""
    for layer in param.layer:
        if layer.type == "Dropout":
            layer.dropout_param.dropout_ratio = 0.0
    return param


def train_losses(tmp, tag, param, solver_text, device, iters=ITERS):
    """Every output of `iters` SGD steps on `device` (None: CPU), from the
    weights the fillers gave the first time this net was made (saved)."""
    net_path = os.path.join(str(tmp), tag + "_train.prototxt")
    with open(net_path, "w") as f:
        f.write(str(without_caffe_dropout(param)))
    solver_path = os.path.join(str(tmp), tag + "_solver.prototxt")
    with open(solver_path, "w") as f:
        f.write(solver_text(net_path))
    init = os.path.join(str(tmp), tag + "_init.caffemodel")
    caffe_env.set_mode(device)
    try:
        solver = caffe.SGDSolver(solver_path)
        if os.path.exists(init):
            solver.net.copy_from(init)
        else:
            solver.net.save(init)
        history = []
        for _ in range(iters):
            solver.step(1)
            history.append([float(solver.net.blobs[b].data.ravel()[0]) for b in solver.net.outputs])
        close = getattr(solver.net.layers[0], "close", None)
        if close:
            close()
        return list(solver.net.outputs), np.array(history)
    finally:
        caffe_env.set_mode(None)


def assert_same_training(cpu, dev):
    assert cpu[0] == dev[0]
    np.testing.assert_allclose(dev[1], cpu[1], rtol=RTOL, atol=ATOL, err_msg="outputs %s" % cpu[0])


def test_geng16_googlenet_six_losses_match_cpu(data):
    spec = geng16.geng16(base="googlenet", num_ids=data["num_ids"], source=data["lmdb_256"], k=4, m=2)
    param = geng16.net_param(spec, "geng16_gpu_check")
    text = lambda net: geng16.solver_text(net, 1000, snapshot_prefix=str(data["tmp"] / "g16"))
    cpu = train_losses(data["tmp"], "geng16", param, text, None)
    dev = train_losses(data["tmp"], "geng16", param, text, DEVICE)
    assert sum(name.endswith("loss") for name in cpu[0]) == 6
    assert_same_training(cpu, dev)


def test_mtdnet_matches_cpu(data):
    param = mtdnet.mtdnet(data="lmdb", batch=4, source=data["lmdb_160"], seed=0).to_proto()
    text = lambda net: mtdnet.solver(net, 1000, snapshot_prefix=str(data["tmp"] / "mtd"))
    cpu = train_losses(data["tmp"], "mtdnet", param, text, None)
    dev = train_losses(data["tmp"], "mtdnet", param, text, DEVICE)
    assert {"tripletloss", "loss"} <= set(cpu[0])
    assert_same_training(cpu, dev)


def test_extraction_matches_cpu(data):
    deploy, weights = data["deploy"]
    found = []
    for device in (None, DEVICE):
        out = str(data["tmp"] / ("feat_%s.npz" % device))
        found.append(features.extract_to_file(out, deploy, weights, data["split_path"],
                                              subsets=("query",), batch=8, gpu=device))
    cpu, dev = (f["query"]["features"] for f in found)
    assert cpu.shape[0] == len(found[0]["query"]["pids"]) > 0 and cpu.shape[1] == 1024
    np.testing.assert_allclose(dev, cpu, rtol=RTOL, atol=ATOL)


def test_missing_device_is_refused(data):
    count = caffe_env.cuda_device_count()
    # the CUDA build names the devices there are; a CPU_ONLY one says so
    why = "but the CUDA driver reports %d GPU" % count if caffe_env.built_with_cuda() else "is a CPU_ONLY build"
    with pytest.raises(RuntimeError, match=why):
        caffe_env.set_mode(count)
    # and from the command line, with every other input good: one error
    # line, no abort, no output file
    deploy, weights = data["deploy"]
    out = data["tmp"] / "refused.npz"
    proc = subprocess.run([sys.executable, "-m", "tools.extract_features", "--gpu", str(count),
                           "--deploy", deploy, "--weights", weights, "--split", data["split_path"],
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: GPU mode requested") and why in last, last
    assert "Traceback" not in proc.stderr and not out.exists()


def test_training_on_a_missing_device_is_refused(data):
    count = caffe_env.cuda_device_count()
    net = str(data["tmp"] / "refused_train.prototxt")
    with open(net, "w") as f:
        f.write(geng16.net_text(geng16.geng16(base="dgdnet", num_ids=data["num_ids"],
                                              source=data["lmdb_160"], k=4, m=2), "refused"))
    solver = str(data["tmp"] / "refused_solver.prototxt")
    with open(solver, "w") as f:
        f.write(geng16.solver_text(net, 10, snapshot_prefix=str(data["tmp"] / "refused")))
    # a device that is not there; two that are not (or a build without
    # NCCL): refused before anything starts, in one line
    two = "%d,%d" % (count, count + 1)
    for device, start in (("--gpu=%d" % count, "error: GPU mode requested"),
                          ("--gpus=" + two, "error: --gpus %s: " % two)):
        run_dir = data["tmp"] / ("refused_run_%s" % device[2:6])
        proc = subprocess.run([sys.executable, "-m", "tools.train", "--solver", solver, "--run-dir",
                               str(run_dir), device, "--no-progress"],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        lines = proc.stderr.splitlines()
        assert proc.returncode == 1 and proc.stdout == "", proc.stderr[-2000:]
        assert len(lines) == 1 and lines[0].startswith(start), proc.stderr[-2000:]
        assert not any(f.endswith(".caffemodel") for f in os.listdir(run_dir))
