"""The training loop of one process (alone, or one rank of a multi-GPU
team): steps in chunks up to the next display line or snapshot, a progress
bar, a snapshot and its record every interval and on an interruption, a
stop at a non-finite loss, and the final weights."""
import contextlib
import json
import os
import shutil
import signal
import time

import numpy as np
from tqdm import tqdm

from common import cli
from common.atomic import atomic_path, write_text
from common.layout import FINAL, LOG, STATE
from common.progress import mininterval
from training import multi_gpu, surgery
from training.interrupts import Interrupted, redirect_glog, restore_glog, signals_held
from training.multi_gpu import Stopped
from training.run_dir import load_state
from training.solver_setup import read_solver
import caffe


class NonFinite(cli.Failure):
    """A loss became NaN or infinite."""


def _snapshot(solver, run_dir, hold=True):
    """Snapshot and record it; the record is written only after Caffe has
    finished both files, so a resume never sees a half-written pair."""
    with signals_held() if hold else contextlib.nullcontext():
        solver.snapshot()
        it = solver.iter
        state = {"iter": it, "caffemodel": "snap_iter_%d.caffemodel" % it,
                 "solverstate": "snap_iter_%d.solverstate" % it}
        for key in ("caffemodel", "solverstate"):
            if not os.path.isfile(os.path.join(run_dir, state[key])):
                raise RuntimeError("Caffe did not write %s" % os.path.join(run_dir, state[key]))
        old = load_state(run_dir)
        state["snapshots"] = sorted(set(old.get("snapshots", [old["iter"]]) if old else []) | {it})
        write_text(os.path.join(run_dir, STATE), json.dumps(state, indent=1) + "\n")
    return load_state(run_dir)


def _snapshot_once(solver, run_dir, hold=True):
    """The recorded snapshot of the current iteration, taken unless it was."""
    state = load_state(run_dir)
    if state and state["iter"] == solver.iter:
        return state
    return _snapshot(solver, run_dir, hold)


def _loss_summary(net):
    parts = []
    for name in net.outputs:
        weight = net.blob_loss_weights[name]
        if weight:
            parts.append("%s %.4g" % (name, float(net.blobs[name].data.flat[0])))
    return ", ".join(parts)


def _batch_size(net):
    """Images per iteration: the first blob's batch dimension (the data top)."""
    return next(iter(net.blobs.values())).data.shape[0]


def _current_lr(param, it):
    """Caffe's SGDSolver::GetLearningRate for the policies the papers use."""
    policy = param.lr_policy
    if policy == "fixed":
        return param.base_lr
    if policy == "step":
        return param.base_lr * param.gamma ** (it // param.stepsize)
    if policy == "multistep":
        passed = sum(1 for s in param.stepvalue if it >= s)
        return param.base_lr * param.gamma ** passed
    return float("nan")


def _chunk(it, total, display, snapshot_every):
    """Iterations of the next solver.step() from iteration `it`: up to the
    next display line, snapshot or the end. A function of the iteration
    alone, so the ranks of a multi-GPU run step alike."""
    steps = min(max(1, display), total - it)
    if snapshot_every:
        steps = min(steps, snapshot_every - it % snapshot_every)
    return steps


def rank_main(team, staged, run_dir, weights, resume, snapshot_every, progress):
    """One GPU's process of a multi-GPU stage (multi_gpu.launch)."""
    team.setup_caffe()
    train(staged, read_solver(staged), run_dir, weights, resume, snapshot_every, progress, team)


def _check_finite(net, it, run_dir):
    """Stop at a NaN or infinite loss, before it is snapshotted."""
    for name in net.outputs:
        if net.blob_loss_weights[name] and not np.all(np.isfinite(net.blobs[name].data)):
            state = load_state(run_dir)
            kept = ("the last good snapshot, iteration %d, is kept" % state["iter"] if state
                    else "no snapshot was taken")
            raise NonFinite("loss output '%s' is %s at iteration %d; training stopped, %s (%s)"
                            % (name, float(net.blobs[name].data.flat[0]), it, kept,
                               os.path.join(run_dir, LOG)))


def train(staged, param, run_dir, weights, resume, snapshot_every, progress, team=None,
           blobs=None):
    """The training loop of one process: alone, or one rank of a
    multi_gpu.Team, where rank 0 alone shows progress and writes outputs
    and interruptions stop all ranks at one chunk boundary."""
    root = team is None or team.root
    hold = team is None  # a team's signals only request the agreed stop (multi_gpu._child)
    saved_stderr, terminal = redirect_glog(os.path.join(run_dir, LOG))
    old_term = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        raise Interrupted()

    if hold:
        signal.signal(signal.SIGTERM, on_term)
    try:
        solver = caffe.get_solver(staged)
        if resume:
            solver.restore(resume)
        elif weights:
            # shapes checked before anything is copied (Caffe's copy_from aborts on them and
            # silently ignores a file that fits no layer)
            surgery.load_blobs(solver.net, blobs or surgery.read_blobs(weights), weights)
        if team:
            team.attach(solver)
        for layer in solver.net.layers:
            if hasattr(layer, "resume_at"):
                layer.resume_at(solver.iter)
        batch = _batch_size(solver.net)
        if team and root:
            caffe.log("Using GPUs %s: %d images per GPU x %d GPUs = %d images per iteration"
                      % (multi_gpu.gpus_text(team.gpus), batch, team.count, batch * team.count))
            batch *= team.count
        if root:
            # The lines Solver::Solve() would log: parse_log.py takes its start
            # time from "Solving" (pycaffe's step() does not log it).
            caffe.log("Solving %s" % os.path.basename(param.net or param.train_net))
            caffe.log("Learning Rate Policy: %s" % param.lr_policy)
        total = param.max_iter
        bar = tqdm(total=total, initial=solver.iter, file=terminal, disable=not (progress and root),
                   dynamic_ncols=True, desc=os.path.basename(os.path.normpath(run_dir)),
                   mininterval=mininterval(terminal))
        start, start_iter = time.time(), solver.iter
        try:
            while solver.iter < total:
                steps = _chunk(solver.iter, total, param.display, snapshot_every)
                solver.step(steps)
                _check_finite(solver.net, solver.iter, run_dir)
                rate = (solver.iter - start_iter) * batch / max(time.time() - start, 1e-9)
                # drawn by update(), which keeps to mininterval (a refresh here would not)
                bar.set_postfix_str("%s | lr %.3g | %.1f img/s" % (
                    _loss_summary(solver.net), _current_lr(param, solver.iter), rate), refresh=False)
                bar.update(steps)
                if root and snapshot_every and solver.iter % snapshot_every == 0:
                    _snapshot(solver, run_dir, hold)
                if team and solver.iter < total and team.should_stop():
                    raise Interrupted()
        except (KeyboardInterrupt, Interrupted):
            bar.close()
            if root:
                with signals_held(swallow=True) if hold else contextlib.nullcontext():
                    _snapshot_once(solver, run_dir, hold=False)
                    terminal.write("interrupted at iteration %d; snapshot saved, rerun to resume\n"
                                   % solver.iter)
            raise Stopped()
        bar.close()
        final = os.path.join(run_dir, FINAL)
        if root:
            state = _snapshot_once(solver, run_dir, hold)
            with atomic_path(final) as tmp:
                shutil.copyfile(state["caffemodel"], tmp)
        return final
    finally:
        signal.signal(signal.SIGTERM, old_term)
        restore_glog(saved_stderr)
        terminal.close()
