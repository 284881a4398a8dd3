"""Two-stepped fine-tuning (Geng16 §4.1, Table 6), one Geng16 stage:

    step 1: the new N-way classifiers `cls_*` alone learn (every other layer
            has learning rate 0 and BatchNorm keeps its statistics), starting
            from the previous stage's weights loaded by name; with
            `step1_pv` in net_kw the new PV layers learn too (not the
            paper's reading, geng16.step1_learns);
    step 2: all layers learn, from step 1's weights.

One-stepped fine-tuning (the Table 6 baseline) is step 2 alone, straight
from the previous stage's weights. Iteration counts are the paper's
(networks/solver.py: 20K + 150K into a large set, 20K + 20K into a
small one) times `scale`.

Each step is a training/stage.py stage in its own folder under `run_dir`
(`step1/`, `step2/`): the generated net and solver, the by-name init
(training/surgery.py) and Caffe's log. A finished step is not run again and an
interrupted one resumes, so rerunning a stage continues where it stopped;
a step (or its init) made from other weights, nets or solvers is refused
unless `recompute` (training/stage.py's stage record).

The init must fill every layer of the net but the heads a transfer
replaces (`cls_*`, whose name carries the new identity count, and the PV
heads, absent from an ImageNet model), and BatchNorm statistics where step
2 re-estimates them: a model of another base or an unrelated file is
refused, naming the first layer it lacks.
"""
import os

from google.protobuf import text_format

from common import records
from common.atomic import write_text
from caffe.proto import caffe_pb2
from training import surgery
from networks import geng16
from training.stage import train_stage

NET = "train.prototxt"
SOLVER = "solver.prototxt"
INIT = "init.caffemodel"


def write_step(step_dir, net_kw, step, max_iter, scale=1.0, name="geng16", solver_kw=None):
    """Write `step_dir`/train.prototxt (geng16.geng16(**net_kw), frozen for
    step 1 but for what net_kw's `step1_pv` lets learn) and its solver
    (geng16.solver_text, `solver_kw` overriding the paper's values); returns
    (solver path, NetParameter)."""
    os.makedirs(step_dir, exist_ok=True)
    net_kw = dict(net_kw)
    step1_pv = net_kw.pop("step1_pv", False)  # net_param's, not geng16()'s
    param = geng16.net_param(geng16.geng16(**net_kw), "%s_step%d" % (name, step), step, step1_pv)
    write_text(os.path.join(step_dir, NET), text_format.MessageToString(param))
    solver = os.path.join(step_dir, SOLVER)
    write_text(solver, geng16.solver_text(NET, max_iter, scale=scale,
                                          snapshot_prefix="%s_step%d" % (name, step),
                                          **(solver_kw or {})))
    return solver, param


def transferred(name):
    """Whether fine-tuning must find layer `name` in the previous stage's
    weights: all but the heads a transfer replaces."""
    return not (name.startswith("cls_") or "/pv_" in name)


def init_layers(net):
    """A net (NetParameter or its text) without its data layers (those
    without bottoms), as text: what an init made for it depends on, the
    same wherever the LMDBs are."""
    if isinstance(net, str):
        net = text_format.Merge(net, caffe_pb2.NetParameter())
    return "".join(text_format.MessageToString(layer) for layer in net.layer if layer.bottom)


def _init(step_dir, weights, frozen_stats, param, seed=None, recompute=False):
    """Build step_dir/init.caffemodel from `weights` by name (once per
    weights and net: its record says which). With `frozen_stats`, refuse
    weights that lack a BatchNorm layer's statistics: step 1 would run on
    empty statistics."""
    out = os.path.join(step_dir, INIT)
    record = {"weights": records.sha1(weights), "net": init_layers(param), "seed": seed}
    if records.reuse_file(out, record, recompute):
        return out
    blobs = surgery.read_blobs(weights)  # junk is refused before the net is built
    net = surgery.open_net(os.path.join(step_dir, NET), seed=seed)
    copied, initialised, _ = surgery.plan(net, blobs, weights)
    bn = {l.name for l in param.layer if l.type == "BatchNorm"}
    if frozen_stats:
        empty = sorted(bn & set(initialised))
        if empty:
            raise ValueError("step 1 keeps BatchNorm statistics frozen but %s has none for "
                             "layer '%s' (%d such): pretrain first, or fine-tune one-stepped"
                             % (weights, empty[0], len(empty)))
    # training all layers estimates BatchNorm statistics afresh: they may be missing then
    surgery.check_required(copied, initialised, blobs, weights,
                           lambda name: transferred(name) and name not in bn)
    surgery.copy_planned(net, blobs, copied)
    surgery.save_net(net, out)
    records.write_record(out, record)
    return out


def fine_tune(run_dir, net_kw, weights=None, iters=geng16.SCHEDULES["large"], two_step=True,
              scale=1.0, name="geng16", snapshot_every=1000, gpu=None, seed=None, progress=True,
              solver_kw=None, recompute=False):
    """Run (or resume, or skip) one Geng16 stage; returns the final
    .caffemodel. `net_kw` are geng16.geng16's arguments (base, losses,
    num_ids, source, k, m, …); `weights` the previous stage's model (None:
    the fillers, as for Table 8's "no ImageNet" rows)."""
    step1_iters, step2_iters = iters
    if net_kw.get("step1_pv") and not two_step:
        raise ValueError("step1_pv: one-stepped fine-tuning has no step 1")
    if two_step:
        if not weights:
            raise ValueError("two-stepped fine-tuning needs the previous stage's weights "
                             "(step 1 trains the classifier on fixed features)")
        step_dir = os.path.join(run_dir, "step1")
        solver, param = write_step(step_dir, net_kw, 1, step1_iters, scale, name, solver_kw)
        init = _init(step_dir, weights, True, param, seed, recompute)
        weights = train_stage(solver, step_dir, init, snapshot_every, gpu, seed, progress,
                              recompute=recompute)
    step_dir = os.path.join(run_dir, "step2")
    solver, param = write_step(step_dir, net_kw, 2, step2_iters, scale, name, solver_kw)
    init = _init(step_dir, weights, False, param, seed, recompute) if weights else None
    return train_stage(solver, step_dir, init, snapshot_every, gpu, seed, progress,
                       recompute=recompute)
