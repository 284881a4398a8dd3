"""Run one training stage in-process through pycaffe's solver, resumably.

    python -m tools.train --solver S.prototxt --run-dir runs/X [--weights W.caffemodel]
                          [--snapshot-every 1000] [--gpu 0 | --gpus 0,1] [--seed 1]

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
- The CPU by default; `--gpu N` trains on GPU N; `--gpus 0,1,…` trains on
  several with Caffe's NCCL data parallelism, one process per GPU, each
  taking the prototxt's batch (tools/multi_gpu.py); an interruption stops
  them together within `display` iterations. A run the build or
  machine cannot do (no CUDA, no NCCL, no such device, a data layer that
  does not shard by solver rank) is refused in one line before it starts.
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
from tools import multi_gpu
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


def _snapshot_once(solver, run_dir):
    """The recorded snapshot of the current iteration, taken unless it was."""
    state = load_state(run_dir)
    if state and state["iter"] == solver.iter:
        return state
    return _snapshot(solver, run_dir)


def _redirect_glog(log_path):
    """Send Caffe's glog (stderr, INFO and up) to log_path. Returns the saved
    original stderr descriptor and glog level (_restore_glog puts them back)
    and a file on the terminal for the progress bar."""
    global _glog_ready
    sys.stderr.flush()
    level = caffe_env.glog_level()
    saved = os.dup(2)
    terminal = os.fdopen(os.dup(saved), "w", buffering=1)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    if not _glog_ready:
        caffe.init_log(0, True)  # glog may be initialised only once per process
        _glog_ready = True
    caffe_env.set_glog_level(0)
    return (saved, level), terminal


def _restore_glog(saved):
    """Undo _redirect_glog: stderr back on the terminal, glog's level back
    (library use stays quiet after a training stage in the same process)."""
    fd, level = saved
    os.dup2(fd, 2)
    os.close(fd)
    caffe_env.set_glog_level(level)


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


def train_stage(solver_path, run_dir, weights=None, snapshot_every=1000, gpu=None, seed=None,
                progress=True, gpus=None):
    """Run (or resume, or skip when done) one stage on the CPU, on GPU `gpu`,
    or data-parallel on the GPUs `gpus`. Returns the final .caffemodel path.
    Raises multi_gpu.Refused when this build or machine cannot run it."""
    if gpus is not None:
        if gpu is not None:
            raise ValueError("train_stage: give gpu or gpus, not both")
        gpus = multi_gpu.validate_gpus(gpus, "gpus=%r" % (gpus,))
        if len(gpus) == 1:
            gpu, gpus = gpus[0], None
    os.makedirs(run_dir, exist_ok=True)
    final = os.path.join(run_dir, FINAL)
    if os.path.isfile(final):
        return final
    if gpus:
        multi_gpu.check_build(gpus)
    else:
        try:
            caffe_env.set_mode(gpu)
        except RuntimeError as err:
            raise multi_gpu.Refused(str(err)) from None
    staged, param = stage_solver(solver_path, run_dir, seed)
    if weights and not os.path.isfile(weights):
        raise FileNotFoundError("weights file not found: %s" % weights)
    state = load_state(run_dir)
    resume = state["solverstate"] if state else None
    if not gpus:
        return _train(staged, param, run_dir, weights, resume, snapshot_every, progress)
    multi_gpu.check_shardable(param, len(gpus))
    status = multi_gpu.launch(_rank_main, (staged, run_dir, weights, resume, snapshot_every, progress),
                              gpus, caffe.NCCL.new_uid(), os.path.join(run_dir, LOG))
    if status:
        raise SystemExit(status)
    return final


def _rank_main(team, staged, run_dir, weights, resume, snapshot_every, progress):
    """One GPU's process of a multi-GPU stage (multi_gpu.launch)."""
    team.setup_caffe()
    _train(staged, read_solver(staged), run_dir, weights, resume, snapshot_every, progress, team)


def _train(staged, param, run_dir, weights, resume, snapshot_every, progress, team=None):
    """The training loop of one process: alone, or one rank of a
    multi_gpu.Team, where rank 0 alone shows progress and writes outputs
    and interruptions stop all ranks at one chunk boundary."""
    from tqdm import tqdm

    root = team is None or team.root
    saved_stderr, terminal = _redirect_glog(os.path.join(run_dir, LOG))
    old_term = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        raise Interrupted()

    if team is None:  # a team's signals only request the agreed stop (multi_gpu._child)
        signal.signal(signal.SIGTERM, on_term)
    try:
        solver = caffe.get_solver(staged)
        if resume:
            solver.restore(resume)
        elif weights:
            solver.net.copy_from(weights)
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
                   dynamic_ncols=True, desc=os.path.basename(os.path.normpath(run_dir)))
        start, start_iter = time.time(), solver.iter
        try:
            while solver.iter < total:
                steps = _chunk(solver.iter, total, param.display, snapshot_every)
                solver.step(steps)
                bar.update(steps)
                rate = (solver.iter - start_iter) * batch / max(time.time() - start, 1e-9)
                bar.set_postfix_str("%s | lr %.3g | %.1f img/s" % (
                    _loss_summary(solver.net), _current_lr(param, solver.iter), rate))
                if root and snapshot_every and solver.iter % snapshot_every == 0:
                    _snapshot(solver, run_dir)
                if team and solver.iter < total and team.should_stop():
                    raise Interrupted()
        except (KeyboardInterrupt, Interrupted):
            bar.close()
            if root:
                _snapshot_once(solver, run_dir)
                terminal.write("interrupted at iteration %d; snapshot saved, rerun to resume\n"
                               % solver.iter)
            raise SystemExit(multi_gpu.STOPPED)
        bar.close()
        final = os.path.join(run_dir, FINAL)
        if root:
            state = _snapshot_once(solver, run_dir)
            with atomic_path(final) as tmp:
                shutil.copyfile(state["caffemodel"], tmp)
        return final
    finally:
        signal.signal(signal.SIGTERM, old_term)
        _restore_glog(saved_stderr)
        terminal.close()


def _gpus_arg(text):
    try:
        return multi_gpu.parse_gpus(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--solver", required=True)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--weights")
    ap.add_argument("--snapshot-every", type=int, default=1000)
    device = ap.add_mutually_exclusive_group()
    device.add_argument("--gpu", type=int, metavar="ID", help="train on this GPU (default: the CPU)")
    device.add_argument("--gpus", type=_gpus_arg, metavar="ID,ID,...",
                        help="train data-parallel on these GPUs with Caffe's NCCL, one process "
                             "each; an iteration takes the prototxt's batch on every GPU")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        final = train_stage(args.solver, args.run_dir, args.weights, args.snapshot_every, args.gpu,
                            args.seed, progress=not args.no_progress, gpus=args.gpus)
    except multi_gpu.Refused as err:
        sys.exit("tools.train: %s" % err)
    print(final)


if __name__ == "__main__":
    main()
