"""Two-stepped fine-tuning (Geng16 §4.1, Table 6), one Geng16 stage:

    step 1: the new N-way classifiers `cls_*` alone learn (every other layer
            has learning rate 0 and BatchNorm keeps its statistics), starting
            from the previous stage's weights loaded by name;
    step 2: all layers learn, from step 1's weights.

One-stepped fine-tuning (the Table 6 baseline) is step 2 alone, straight
from the previous stage's weights. Iteration counts are the paper's
(tools/netgen/solver.py: 20K + 150K into a large set, 20K + 20K into a
small one) times `scale`.

Each step is a tools/train.py stage in its own folder under `run_dir`
(`step1/`, `step2/`): the generated net and solver, the by-name init
(tools/surgery.py) and Caffe's log. A finished step is not run again and an
interrupted one resumes, so rerunning a stage continues where it stopped.
"""
import os

from google.protobuf import text_format

from common.atomic import write_text
from tools import surgery
from tools.netgen import geng16
from tools.train import train_stage

NET = "train.prototxt"
SOLVER = "solver.prototxt"
INIT = "init.caffemodel"


def write_step(step_dir, net_kw, step, max_iter, scale=1.0, name="geng16", solver_kw=None):
    """Write `step_dir`/train.prototxt (geng16.geng16(**net_kw), frozen for
    step 1) and its solver (geng16.solver_text, `solver_kw` overriding the
    paper's values); returns (solver path, NetParameter)."""
    os.makedirs(step_dir, exist_ok=True)
    param = geng16.net_param(geng16.geng16(**net_kw), "%s_step%d" % (name, step), step)
    write_text(os.path.join(step_dir, NET), text_format.MessageToString(param))
    solver = os.path.join(step_dir, SOLVER)
    write_text(solver, geng16.solver_text(NET, max_iter, scale=scale,
                                          snapshot_prefix="%s_step%d" % (name, step),
                                          **(solver_kw or {})))
    return solver, param


def _init(step_dir, weights, frozen_stats, param):
    """Build step_dir/init.caffemodel from `weights` by name (once). With
    `frozen_stats`, refuse weights that lack a BatchNorm layer's statistics:
    step 1 would run on empty statistics."""
    out = os.path.join(step_dir, INIT)
    if os.path.isfile(out):
        return out
    net = surgery.open_net(os.path.join(step_dir, NET))
    report = surgery.load_weights(net, weights)
    if frozen_stats:
        bn = {l.name for l in param.layer if l.type == "BatchNorm"}
        empty = sorted(bn & set(report["initialised"]))
        if empty:
            raise ValueError("step 1 keeps BatchNorm statistics frozen but %s has none for "
                             "layer '%s' (%d such): pretrain first, or fine-tune one-stepped"
                             % (weights, empty[0], len(empty)))
    surgery.save_net(net, out)
    return out


def fine_tune(run_dir, net_kw, weights=None, iters=geng16.SCHEDULES["large"], two_step=True,
              scale=1.0, name="geng16", snapshot_every=1000, gpu=None, seed=None, progress=True,
              solver_kw=None):
    """Run (or resume, or skip) one Geng16 stage; returns the final
    .caffemodel. `net_kw` are geng16.geng16's arguments (base, losses,
    num_ids, source, k, m, …); `weights` the previous stage's model (None:
    the fillers, as for Table 8's "no ImageNet" rows)."""
    step1_iters, step2_iters = iters
    if two_step:
        if not weights:
            raise ValueError("two-stepped fine-tuning needs the previous stage's weights "
                             "(step 1 trains the classifier on fixed features)")
        step_dir = os.path.join(run_dir, "step1")
        solver, param = write_step(step_dir, net_kw, 1, step1_iters, scale, name, solver_kw)
        init = _init(step_dir, weights, True, param)
        weights = train_stage(solver, step_dir, init, snapshot_every, gpu, seed, progress)
    step_dir = os.path.join(run_dir, "step2")
    solver, param = write_step(step_dir, net_kw, 2, step2_iters, scale, name, solver_kw)
    init = _init(step_dir, weights, False, param) if weights else None
    return train_stage(solver, step_dir, init, snapshot_every, gpu, seed, progress)
