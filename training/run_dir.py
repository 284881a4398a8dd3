"""A training stage's run directory: held by one run at a time (a lock
the kernel releases however the process ends), its state (the last
recorded snapshot, names relative to the directory so that it can move),
the snapshots no state names (removed), and its marker's record of what
made it (common/atomic.py): a run made otherwise is refused unless asked
to start afresh."""
import contextlib
import fcntl
import json
import os
import re
import time

from common import cli, records
from common.atomic import atomic_path, read_marker
from common.layout import FINAL, LOG, STATE
from caffe.proto import caffe_pb2

LOCK = ".train.lock"
LOCK_TRIES = 20
KIND = "training stage"
_SNAP = re.compile(r"^snap_iter_(\d+)\.(caffemodel|solverstate)$")


class Busy(cli.Failure):
    """The run directory is held by another live run."""


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


def clean_unrecorded(run_dir, state):
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


def check_record(run_dir, record, recompute):
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


def point_at_own_snapshot(state):
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
