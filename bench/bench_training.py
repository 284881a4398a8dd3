"""Geng16 training iterations on the CPU: images/s, and the share not in Caffe's layers.

Images per second of a full SGD `solver.step(1)`, and the share of it spent
outside Caffe's own layers and update.

The real training nets (SID + PV losses, networks/geng16.py) read a
synthetic Market-1501-layout LMDB through the IdentitySampledData layer, for
two bases: DGDNet at the paper's batch K = 32, M = 2 (144×56 crops of
160×64 images) and GoogLeNet with its two auxiliary heads at K = 8, M = 2
(224×224 crops of 256×256 images): its cost is linear in the batch, and
K = 32 would take about 10 s an iteration on 2 cores, too long to time
several in a bench of a few minutes. Best of 2 (DGDNet) or 4 (GoogLeNet)
iterations after a warm-up.

Two figures per base:

- images/s of the full iteration (ours) against the same solver on the same
  net with Input layers in place of our data layer, fed one of its batches
  (the pair-generation and pair-dropout Python layers are in both, so the
  ratio is what the data layer costs);
- seconds per iteration in Python layers (data, pair generation, pairwise-
  consistent dropout; bench_geng16_layers.layer_times, layer by layer)
  against the whole `solver.step(1)` (forward, backward and Caffe's own
  update): the ratio is the non-Caffe share. Target: under 5 %.
"""
import os
import tempfile
import time

from common import caffe_env  # noqa: F401  (quiets glog before caffe loads)
import caffe
from bench.bench_geng16_layers import layer_times
from bench.timing import Result
from data_prep import market1501, synthetic
from data_prep.lmdb_builder import build_lmdb
from networks import geng16

NUM_IDS = 80        # 40 training identities: enough for K = 32
M = 2
# base: (K, stored LMDB height × width, timed iterations per solver)
BASES = {"dgdnet": (32, (160, 64), 2), "googlenet": (8, (256, 256), 4)}


def _solver(tmp, name, spec):
    """An SGD solver with Geng16's schedule on the net of `spec`, via files in tmp."""
    net_path = os.path.join(tmp, name + "_train.prototxt")
    solver_path = os.path.join(tmp, name + "_solver.prototxt")
    with open(net_path, "w") as f:
        f.write(geng16.net_text(spec, name))
    with open(solver_path, "w") as f:
        f.write(geng16.solver_text(net_path, 100000,
                                   snapshot_prefix=os.path.join(tmp, name)))
    return caffe.SGDSolver(solver_path)


def _best_steps(a, b, rounds, sync=None):
    """Best seconds of one step of solvers a and b, taking turns in the order
    ab, ba, ab, … (so neither always runs right after the other); `sync`
    waits for a GPU's queued work."""
    best = {a: float("inf"), b: float("inf")}
    for r in range(rounds):
        for solver in (a, b) if r % 2 == 0 else (b, a):
            start = time.perf_counter()
            solver.step(1)
            if sync:
                sync()
            best[solver] = min(best[solver], time.perf_counter() - start)
    return best[a], best[b]


def _bench_base(tmp, split, num_ids, base):
    k, (h, w), rounds = BASES[base]
    batch = k * M
    source = build_lmdb(split, os.path.join(tmp, "%s_%dx%d.lmdb" % (base, h, w)), h, w,
                        verbose=False)
    ours = _solver(tmp, base, geng16.geng16(base=base, num_ids=num_ids, source=source, k=k, m=M))
    plain = _solver(tmp, base + "_input",
                    geng16.geng16(base=base, num_ids=num_ids, data="input", k=k, m=M))
    ours.step(1)
    # Caffe alone for the data: Input layers holding the batch our layer delivered
    for blob in ("data", "label"):
        plain.net.blobs[blob].data[...] = ours.net.blobs[blob].data
    plain.step(1)
    step, plain_step = _best_steps(ours, plain, rounds)
    python, _ = layer_times(ours.net, rounds=1)
    ours.net.layers[0].close()
    tag = "%s K=%d M=%d" % (base, k, M)
    return [
        Result("%s iteration (img/s)" % tag, batch / step, batch / plain_step, "img/s",
               "Input-layer data", ">= 0.95"),
        Result("%s Python layers (s/iter)" % tag, python, step, "s", "solver.step(1)",
               "ratio < 0.05"),
    ]


def run():
    with tempfile.TemporaryDirectory(prefix="bench_training-") as tmp:
        tree = synthetic.generate(os.path.join(tmp, "tree"), num_ids=NUM_IDS, seed=0, quiet=True)
        split = market1501.parse(tree)
        num_ids = max(split["trials"][0]["train_labels"]) + 1
        return [r for base in BASES for r in _bench_base(tmp, split, num_ids, base)]
