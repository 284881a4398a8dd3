"""Run one training stage in-process through pycaffe's solver, resumably.

    python -m tools.train --solver S.prototxt --run-dir runs/X [--weights W.caffemodel]
                          [--snapshot-every 1000] [--gpu 0] [--seed 1]

- Caffe logs natively (glog INFO to `<run-dir>/train.log`), so Caffe's own
  `tools/extra/parse_log.py` reads it; the terminal shows a progress bar
  (iteration, losses, learning rate, images/s, ETA).
- Snapshots every `--snapshot-every` iterations and on Ctrl-C / SIGTERM; each
  is recorded in `<run-dir>/state.json` (written atomically) only once both
  files are complete. A rerun resumes from the last recorded `.solverstate`:
  no completed iteration is lost to an interruption that can be caught, and
  at most one interval to a SIGKILL.
- On completion the weights are `<run-dir>/final.caffemodel` (atomic) and a
  rerun does nothing.
- Python layers that define `resume_at(iteration)` are told the iteration
  after a restore, so seeded data layers continue where they stopped.
"""
import argparse
import json
import os
import shutil
import signal
import sys
import time

from google.protobuf import text_format

from common import caffe_env
from common.atomic import atomic_path, write_text
import caffe
from caffe.proto import caffe_pb2

STATE = "state.json"
FINAL = "final.caffemodel"
LOG = "train.log"

_glog_ready = False


class Interrupted(Exception):
    """Raised by the SIGTERM handler so a kill snapshots like Ctrl-C."""


def read_solver(path):
    """SolverParameter of a prototxt file, with a clear error when unreadable."""
    param = caffe_pb2.SolverParameter()
    try:
        with open(path) as f:
            text_format.Merge(f.read(), param)
    except FileNotFoundError:
        raise FileNotFoundError("solver file not found: %s" % path) from None
    except text_format.ParseError as err:
        raise ValueError("solver file %s does not parse: %s" % (path, err)) from None
    return param


def stage_solver(solver_path, run_dir, seed=None):
    """The solver actually run: the given one with absolute net paths, our own
    snapshot control (Caffe's interval snapshots off), the prefix in run_dir."""
    param = read_solver(solver_path)
    base = os.path.dirname(os.path.abspath(solver_path))
    for field in ("net", "train_net"):
        if param.HasField(field):
            value = getattr(param, field)
            setattr(param, field, value if os.path.isabs(value) else os.path.join(base, value))
    param.test_net[:] = [t if os.path.isabs(t) else os.path.join(base, t) for t in param.test_net]
    param.snapshot = 0
    param.snapshot_after_train = False
    param.snapshot_prefix = os.path.join(os.path.abspath(run_dir), "snap")
    if seed is not None:
        param.random_seed = seed
    path = os.path.join(run_dir, "solver.prototxt")
    write_text(path, text_format.MessageToString(param))
    return path, param


def load_state(run_dir):
    path = os.path.join(run_dir, STATE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _snapshot(solver, run_dir):
    """Snapshot and record it; the record is written only after Caffe has
    finished both files, so a resume never sees a half-written pair."""
    solver.snapshot()
    it = solver.iter
    prefix = os.path.join(run_dir, "snap_iter_%d" % it)
    state = {"iter": it, "caffemodel": prefix + ".caffemodel", "solverstate": prefix + ".solverstate"}
    for key in ("caffemodel", "solverstate"):
        if not os.path.isfile(state[key]):
            raise RuntimeError("Caffe did not write %s" % state[key])
    write_text(os.path.join(run_dir, STATE), json.dumps(state, indent=1) + "\n")
    return state


def _redirect_glog(log_path):
    """Send Caffe's glog (stderr, INFO and up) to log_path. Returns the saved
    original stderr descriptor (restore it with os.dup2) and a file on it for
    the progress bar."""
    global _glog_ready
    sys.stderr.flush()
    saved = os.dup(2)
    terminal = os.fdopen(os.dup(saved), "w", buffering=1)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    if not _glog_ready:
        caffe.init_log(0, True)  # glog may be initialised only once per process
        _glog_ready = True
    return saved, terminal


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


def train_stage(solver_path, run_dir, weights=None, snapshot_every=1000, gpu=None, seed=None,
                progress=True):
    """Run (or resume, or skip when done) one stage. Returns the final
    .caffemodel path."""
    from tqdm import tqdm

    os.makedirs(run_dir, exist_ok=True)
    final = os.path.join(run_dir, FINAL)
    if os.path.isfile(final):
        return final
    caffe_env.set_mode(gpu)
    staged, param = stage_solver(solver_path, run_dir, seed)
    if weights and not os.path.isfile(weights):
        raise FileNotFoundError("weights file not found: %s" % weights)
    saved_stderr, terminal = _redirect_glog(os.path.join(run_dir, LOG))
    old_term = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        raise Interrupted()

    signal.signal(signal.SIGTERM, on_term)
    try:
        solver = caffe.get_solver(staged)
        state = load_state(run_dir)
        if state:
            solver.restore(state["solverstate"])
        elif weights:
            solver.net.copy_from(weights)
        for layer in solver.net.layers:
            if hasattr(layer, "resume_at"):
                layer.resume_at(solver.iter)
        # The lines Solver::Solve() would log: parse_log.py takes its start
        # time from "Solving" (pycaffe's step() does not log it).
        caffe.log("Solving %s" % os.path.basename(param.net or param.train_net))
        caffe.log("Learning Rate Policy: %s" % param.lr_policy)
        total = param.max_iter
        batch = _batch_size(solver.net)
        bar = tqdm(total=total, initial=solver.iter, file=terminal, disable=not progress,
                   dynamic_ncols=True, desc=os.path.basename(os.path.normpath(run_dir)))
        chunk = max(1, param.display or 1)
        start, start_iter = time.time(), solver.iter
        try:
            while solver.iter < total:
                steps = min(chunk, total - solver.iter,
                            snapshot_every - solver.iter % snapshot_every if snapshot_every else chunk)
                solver.step(steps)
                bar.update(steps)
                rate = (solver.iter - start_iter) * batch / max(time.time() - start, 1e-9)
                bar.set_postfix_str("%s | lr %.3g | %.1f img/s" % (
                    _loss_summary(solver.net), _current_lr(param, solver.iter), rate))
                if snapshot_every and solver.iter % snapshot_every == 0:
                    _snapshot(solver, run_dir)
        except (KeyboardInterrupt, Interrupted):
            _snapshot(solver, run_dir)
            bar.close()
            terminal.write("interrupted at iteration %d; snapshot saved, rerun to resume\n" % solver.iter)
            raise SystemExit(130)
        bar.close()
        state = load_state(run_dir)
        if not state or state["iter"] != solver.iter:
            state = _snapshot(solver, run_dir)
        with atomic_path(final) as tmp:
            shutil.copyfile(state["caffemodel"], tmp)
        return final
    finally:
        signal.signal(signal.SIGTERM, old_term)
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        terminal.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--solver", required=True)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--weights")
    ap.add_argument("--snapshot-every", type=int, default=1000)
    ap.add_argument("--gpu", type=int)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    final = train_stage(args.solver, args.run_dir, args.weights, args.snapshot_every, args.gpu,
                        args.seed, progress=not args.no_progress)
    print(final)


if __name__ == "__main__":
    main()
