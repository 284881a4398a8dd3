"""One training stage in-process through pycaffe's solver, resumably
(`python -m tools.train` is its command):

- Caffe logs natively (glog INFO to `<run-dir>/train.log`), so Caffe's own
  `tools/extra/parse_log.py` reads it; the terminal shows a progress bar
  (iteration, losses, learning rate, images/s, ETA).
- Snapshots every `--snapshot-every` iterations and on Ctrl-C / SIGTERM; each
  is recorded in `<run-dir>/state.json` (written atomically) only once both
  files are complete. A rerun resumes from the last recorded `.solverstate`:
  no completed iteration is lost to an interruption that can be caught, and
  at most one interval to a SIGKILL.
- On completion the weights are `<run-dir>/final.caffemodel` (atomic) and a
  rerun does nothing — when it is the same run: the run directory's marker
  (common/atomic.py) records what made the stage (the net and solver text,
  the initial weights' and the LMDB indexes' SHA-1, the number of GPU
  processes), and a rerun or resume that differs is refused, naming the
  first difference, unless asked to `--recompute` (which starts afresh).
- One run at a time per run directory (a lock file held for the run; a
  second run is refused, naming the holder's PID). The directory is
  relocatable: state.json names its snapshots relative to it and a resume
  points the .solverstate at the snapshot beside it. Snapshots that no
  record names (a SIGKILL during one) are removed by the next run.
- Refused before the first iteration, in one line: initial weights that are
  no model, fit no layer or have another shape (training/surgery.py); labels of
  an LMDB that reach a softmax classifier's num_output; max_iter < 1 or
  --snapshot-every < 0. A non-finite loss stops the run, naming the
  iteration and the output, and leaves the last good snapshot recorded.
- `run_in_child` (what the command calls) runs the stage in a child
  process: when Caffe aborts it (a CHECK failure, a full disk) it raises
  cli.Failure `Caffe aborted: <its F line in train.log> (<log>)`, the
  command's one error line. `train_stage` runs in-process.
- An interruption (Ctrl-C, SIGTERM) snapshots, says so, and raises
  multi_gpu.Stopped (a KeyboardInterrupt): the command ends with status 130.
- Python layers that define `resume_at(iteration)` are told the iteration
  after a restore, so seeded data layers continue where they stopped.
- The CPU by default; `--gpu N` trains on GPU N; `--gpus 0,1,…` trains on
  several with Caffe's NCCL data parallelism, one process per GPU, each
  taking the prototxt's batch (training/multi_gpu.py); an interruption stops
  them together within `display` iterations. A run the build or
  machine cannot do (no CUDA, no NCCL, no such device, a data layer that
  does not shard by solver rank) is refused in one line before it starts.
"""
import contextlib
import ctypes
import fcntl
import json
import multiprocessing
import multiprocessing.connection
import os
import re
import shutil
import signal
import sys
import time
import traceback

import numpy as np
from google.protobuf import text_format

from common import caffe_env, cli, code_fingerprint, records
from common.progress import mininterval
from common.atomic import atomic_path, read_marker, write_marker, write_text
from common.layout import FINAL, INDEX, LOG, STATE
from data_prep.lmdb_builder import read_index
from training import multi_gpu, surgery
from training.multi_gpu import Stopped
import caffe
from caffe.proto import caffe_pb2

LOCK = ".train.lock"
LOCK_TRIES = 20
KIND = "training stage"
_SNAP = re.compile(r"^snap_iter_(\d+)\.(caffemodel|solverstate)$")

_glog_ready = False


class Interrupted(Exception):
    """Raised by the SIGTERM handler so a kill snapshots like Ctrl-C."""


class Busy(cli.Failure):
    """The run directory is held by another live run."""


class NonFinite(cli.Failure):
    """A loss became NaN or infinite."""


def read_solver(path):
    """SolverParameter of a prototxt file, with a clear error when unreadable."""
    return caffe_env.read_prototxt(path, caffe_pb2.SolverParameter(), "solver file")


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
    if param.max_iter < 1:
        raise ValueError("solver %s: max_iter %d: must be >= 1 (a stage of no iterations would "
                         "save untrained weights)" % (solver_path, param.max_iter))
    param.snapshot = 0
    param.snapshot_after_train = False
    param.snapshot_prefix = os.path.join(os.path.abspath(run_dir), "snap")
    if seed is not None:
        param.random_seed = seed
    return param


def _write_staged(run_dir, param):
    path = os.path.join(run_dir, "solver.prototxt")
    write_text(path, text_format.MessageToString(param))
    return path


# --- what the net reads -------------------------------------------------------

# Python data layers whose param_str names LMDBs: {(module, layer): {key: top
# holding the LMDB's labels, or None}}.
DATA_LAYERS = {("layers.identity_sampled_data", "IdentitySampledData"): {"source": 1},
               ("layers.triplet_data", "TripletData"): {"source": None},
               ("layers.triplet_data", "CrossDomainData"): {"source": None, "aux_source": None}}


def _sources(layer):
    """[(param key, LMDB path, label top or None)] of a data layer."""
    if layer.type == "Data" and layer.data_param.source:
        return [("source", layer.data_param.source, layer.top[1] if len(layer.top) > 1 else None)]
    if layer.type != "Python":
        return []
    keys = DATA_LAYERS.get((layer.python_param.module, layer.python_param.layer))
    if not keys:
        return []
    try:
        opts = json.loads(layer.python_param.param_str or "{}")
    except ValueError:
        return []  # the layer's own setup names what is wrong with it
    out = []
    for key, top in keys.items():
        if isinstance(opts, dict) and isinstance(opts.get(key), str):
            out.append((key, opts[key], layer.top[top] if top is not None and len(layer.top) > top
                        else None))
    return out


def _index_of(path):
    """The reid-lmdb index of a data source, or None for an LMDB without one
    (Caffe's own Data layer over a foreign LMDB)."""
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, INDEX)):
        return None
    return read_index(path)  # a missing LMDB is refused here, naming it


def check_labels(net, where):
    """Refuse a net whose softmax classifier (SoftmaxWithLoss on an
    InnerProduct of num_output N) is fed labels of an LMDB reaching N: Caffe
    would train on, its loss a multiple of -ln(FLT_MIN)."""
    producer, labels = {}, {}
    for layer in net.layer:
        if not multi_gpu.in_train(layer):
            continue
        for key, path, top in _sources(layer):
            index = _index_of(path) if top else None
            if index is not None and index["label"]:
                labels[top] = (max(index["label"]), path)
        for top in layer.top:
            if top not in layer.bottom:  # in-place layers keep the producer of their blob
                producer[top] = layer
        if layer.type != "SoftmaxWithLoss" or len(layer.bottom) < 2:
            continue
        fc, label = producer.get(layer.bottom[0]), labels.get(layer.bottom[1])
        if fc is None or fc.type != "InnerProduct" or label is None:
            continue
        top_label, path = label
        n = fc.inner_product_param.num_output
        if top_label >= n:
            raise ValueError("%s: LMDB %s has label %d, beyond the %d outputs of layer '%s' "
                             "(the classifier of loss '%s'): it needs num_output >= %d"
                             % (where, path, top_label, n, fc.name, layer.name, top_label + 1))


def stage_record(param, weights, ranks):
    """What makes a stage's weights: the net (its LMDB paths replaced by
    their indexes' SHA-1, so a moved run directory is the same run) and the
    solver text (paths dropped), the initial weights' SHA-1, the processes,
    and the code: this training loop and the Python layers the net names
    (common/code_fingerprint.py)."""
    original, where = multi_gpu.train_net(param)
    net = caffe_pb2.NetParameter.FromString(original.SerializeToString())
    data = {}
    for layer in net.layer:
        for key, path, _ in _sources(layer):
            index = _index_of(path)
            name = "%s.%s" % (layer.name, key)
            data[name] = records.sha1(os.path.join(path, INDEX)) if index is not None else path
            if layer.type == "Data":
                layer.data_param.source = ""
            else:
                opts = json.loads(layer.python_param.param_str)
                opts[key] = ""
                layer.python_param.param_str = json.dumps(opts, sort_keys=True)
    solver = caffe_pb2.SolverParameter.FromString(param.SerializeToString())
    for field in ("net", "train_net", "test_net", "snapshot_prefix"):
        solver.ClearField(field)
    net_text = text_format.MessageToString(net)
    # the loop and every Python layer the net names decide the weights too
    code = code_fingerprint.fingerprint([__name__] + code_fingerprint.python_layer_modules(net_text))
    return {"net": net_text, "solver": text_format.MessageToString(solver),
            "data": data, "weights": records.sha1(weights) if weights else None,
            "processes": ranks, "code": code}, original, where


# --- the run directory --------------------------------------------------------

@contextlib.contextmanager
def locked(run_dir):
    """Hold the run directory for this process (flock, released by the
    kernel however the process ends); Busy, naming the holder's PID, when
    another run holds it."""
    path = os.path.join(run_dir, LOCK)
    f = open(path, "a+")
    try:
        for attempt in range(LOCK_TRIES):
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt < LOCK_TRIES - 1:
                    time.sleep(0.1)  # a holder just killed may still be on its way out
        else:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise Busy("run directory %s is in use by another training run (PID %s); wait for "
                       "it to end or choose another run directory" % (run_dir, holder)) from None
        f.seek(0)
        f.truncate()
        f.write("%d\n" % os.getpid())
        f.flush()
        yield
    finally:
        f.close()


def load_state(run_dir):
    """state.json with its snapshot names resolved in run_dir (names only:
    the state of a moved or copied directory names its own snapshots)."""
    path = os.path.join(run_dir, STATE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        state = json.load(f)
    for key in ("caffemodel", "solverstate"):
        state[key] = os.path.join(run_dir, os.path.basename(state[key]))
    return state


def _snapshot_files(run_dir):
    """{iteration: [snapshot file names]} in run_dir."""
    found = {}
    for name in os.listdir(run_dir):
        m = _SNAP.match(name)
        if m:
            found.setdefault(int(m.group(1)), []).append(name)
    return found


def _clean_unrecorded(run_dir, state):
    """Remove snapshots no state.json recorded (a SIGKILL during Caffe's
    snapshot leaves them, perhaps half written)."""
    recorded = set(state.get("snapshots", [state["iter"]])) if state else set()
    for it, names in _snapshot_files(run_dir).items():
        if it not in recorded:
            for name in names:
                os.remove(os.path.join(run_dir, name))


def _start_afresh(run_dir):
    """Remove a stage's training outputs (for a recompute)."""
    for names in _snapshot_files(run_dir).values():
        for name in names:
            os.remove(os.path.join(run_dir, name))
    for name in (STATE, FINAL, LOG):
        path = os.path.join(run_dir, name)
        if os.path.lexists(path):
            os.remove(path)


def _check_record(run_dir, record, recompute):
    """Whether run_dir's stage was made as `record` says (True), or is to
    start afresh (False: nothing there, or `recompute`); Stale otherwise."""
    marker = read_marker(run_dir)
    made = marker["record"] if marker and marker.get("kind") == KIND else None
    started = any(os.path.exists(os.path.join(run_dir, n)) for n in (STATE, FINAL))
    if made is None and not started:
        return False
    if records.check(run_dir, made, record, recompute):
        return True
    _start_afresh(run_dir)
    return False


def _point_at_own_snapshot(state):
    """Make the .solverstate name the .caffemodel beside it: Caffe restores
    the weights from the absolute path it wrote, the original directory's
    for a moved or copied one."""
    path = state["solverstate"]
    with open(path, "rb") as f:
        solverstate = caffe_pb2.SolverState.FromString(f.read())
    if solverstate.learned_net != state["caffemodel"]:
        solverstate.learned_net = state["caffemodel"]
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(solverstate.SerializeToString())


@contextlib.contextmanager
def _signals_held(swallow=False):
    """SIGINT and SIGTERM wait while the block runs (a snapshot and its
    record are written whole), then interrupt as usual, unless `swallow`
    (the interruption's own snapshot: one stop is already under way)."""
    pending = []
    held = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum))
            for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in held.items():
            signal.signal(sig, handler)
    if pending and not swallow:
        raise KeyboardInterrupt() if pending[0] == signal.SIGINT else Interrupted()


def _snapshot(solver, run_dir, hold=True):
    """Snapshot and record it; the record is written only after Caffe has
    finished both files, so a resume never sees a half-written pair."""
    with _signals_held() if hold else contextlib.nullcontext():
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
                progress=True, gpus=None, recompute=False):
    """Run (or resume, or skip when done) one stage on the CPU, on GPU `gpu`,
    or data-parallel on the GPUs `gpus`. Returns the final .caffemodel path.
    A stage made from other inputs is refused (common.atomic.Stale) unless
    `recompute`, which trains it afresh. Raises multi_gpu.Refused when this
    build or machine cannot run it, and Stopped when an interruption stopped
    it (its snapshot saved)."""
    if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int) or snapshot_every < 0:
        raise ValueError("--snapshot-every %r: must be an integer >= 0 (0: snapshots only on "
                         "interruption and at the end)" % (snapshot_every,))
    if gpus is not None:
        if gpu is not None:
            raise ValueError("train_stage: give gpu or gpus, not both")
        gpus = multi_gpu.validate_gpus(gpus, "gpus=%r" % (gpus,))
        if len(gpus) == 1:
            gpu, gpus = gpus[0], None
    if weights and not os.path.isfile(weights):
        raise FileNotFoundError("weights file not found: %s" % weights)
    param = stage_solver(solver_path, run_dir, seed)
    os.makedirs(run_dir, exist_ok=True)
    with locked(run_dir):
        record, net, where = stage_record(param, weights, len(gpus) if gpus else 1)
        final = os.path.join(run_dir, FINAL)
        done = _check_record(run_dir, record, recompute)
        if done and os.path.isfile(final):
            return final
        if gpus:
            multi_gpu.check_build(gpus)
        else:
            try:
                caffe_env.set_mode(gpu)
            except RuntimeError as err:
                raise multi_gpu.Refused(str(err)) from None
        blobs = surgery.read_blobs(weights) if weights else None  # junk refused before Caffe runs
        check_labels(net, where)
        if gpus:
            multi_gpu.check_shardable(param, len(gpus))
        if not done:
            write_marker(run_dir, KIND, record)
        staged = _write_staged(run_dir, param)
        state = load_state(run_dir)
        _clean_unrecorded(run_dir, state)
        if state:
            _point_at_own_snapshot(state)
        resume = state["solverstate"] if state else None
        if not gpus:
            return _train(staged, param, run_dir, weights, resume, snapshot_every, progress,
                          blobs=blobs)
        status = multi_gpu.launch(_rank_main, (staged, run_dir, weights, resume, snapshot_every,
                                               progress),  # each rank reads the weights itself
                                  gpus, caffe.NCCL.new_uid(), os.path.join(run_dir, LOG))
        if status:
            raise Stopped(status)
        return final


def _rank_main(team, staged, run_dir, weights, resume, snapshot_every, progress):
    """One GPU's process of a multi-GPU stage (multi_gpu.launch)."""
    team.setup_caffe()
    _train(staged, read_solver(staged), run_dir, weights, resume, snapshot_every, progress, team)


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


def _train(staged, param, run_dir, weights, resume, snapshot_every, progress, team=None,
           blobs=None):
    """The training loop of one process: alone, or one rank of a
    multi_gpu.Team, where rank 0 alone shows progress and writes outputs
    and interruptions stop all ranks at one chunk boundary."""
    from tqdm import tqdm

    root = team is None or team.root
    hold = team is None  # a team's signals only request the agreed stop (multi_gpu._child)
    saved_stderr, terminal = _redirect_glog(os.path.join(run_dir, LOG))
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
                with _signals_held(swallow=True) if hold else contextlib.nullcontext():
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
        _restore_glog(saved_stderr)
        terminal.close()


def caffe_abort_line(log):
    """The message of the last glog FATAL line (`F…] Check failed: …`) in
    the log, or None."""
    found = None
    try:
        with open(log, errors="replace") as f:
            for line in f:
                if re.match(r"^F\d{4} ", line):
                    found = line.split("] ", 1)[-1].strip()
    except OSError:
        return None
    return found


def _child(conn, kwargs, parent):
    """The stage in the command's child process; the outcome goes back
    through `conn` (a Caffe abort ends the process before it can)."""
    # killed with the command: a SIGKILL to it must not leave the stage training
    ctypes.CDLL(None).prctl(multi_gpu.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
    try:
        conn.send(("done", train_stage(**kwargs)))
    except KeyboardInterrupt as err:  # Stopped (snapshot saved) or a Ctrl-C before training
        conn.send(("stopped", getattr(err, "status", cli.INTERRUPTED)))
    except Exception as err:
        conn.send(("error", cli.exit_status(err), cli.message(err), traceback.format_exc()))
    finally:
        conn.close()


def run_in_child(kwargs, debug=False):
    """train_stage(**kwargs) in a forked process, so that Caffe aborting it
    (glog's CHECK, into train.log) is reported here in one line. Returns
    the final weights' path or raises as train_stage would (Stopped when
    an interruption stopped it)."""
    ctx = multiprocessing.get_context("fork")  # the parent has not touched CUDA
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, kwargs, os.getpid()), name="tools.train stage")
    proc.start()
    send.close()
    # Ctrl-C reaches the child too (one process group), which snapshots and
    # stops; a SIGTERM to this process is passed on to it.
    old = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
           signal.SIGTERM: signal.signal(signal.SIGTERM, lambda s, f: os.kill(proc.pid, s))}
    try:
        outcome = None
        multiprocessing.connection.wait([receive, proc.sentinel])
        if receive.poll():
            try:
                outcome = receive.recv()
            except EOFError:
                pass
        proc.join()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        receive.close()
    if outcome is None:
        log = os.path.join(kwargs["run_dir"], LOG)
        code = -proc.exitcode if proc.exitcode and proc.exitcode < 0 else None
        reason = caffe_abort_line(log)
        if reason:
            raise cli.Failure("Caffe aborted: %s (%s)" % (reason, log))
        what = ("killed by %s" % signal.Signals(code).name if code
                else "ended with exit status %s" % proc.exitcode)
        raise cli.Failure("the training process was %s before it finished (%s)" % (what, log))
    if outcome[0] == "done":
        return outcome[1]
    if outcome[0] == "stopped":
        raise Stopped(outcome[1])
    _, status, text, trace = outcome
    if debug:
        sys.stderr.write(trace)
    raise (cli.InputError if status == cli.BAD_INPUT else cli.Failure)(text)

