"""The store: the one folder (`--run-dir`, default runs/) where every stage
of the workflow lives, shared by all experiments and commands.

    <kind>/<label>-<hash>/     a stage's output, named after its configuration
                               and inputs (experiments/plan.py)
    work/<kind>/<id>/          a training's snapshots and logs, outside the
                               outputs, so that a rerun resumes them
    .workflow/stages/<kind>/<id>.json
                               what a finished stage was made with (its
                               causes, experiments/causes.py), written when
                               its job completes: no record, no reuse
    .workflow/config-*.json    the planned graph each command ran
    .workflow/data.json        dataset fingerprints by listing
    .workflow/lock.json        the command using the store now
    .workflow/running/, failed/
                               the jobs running now, those that failed
    .reid-workflow             marks the folder as a store of this package

One command at a time uses a store. Its lock names the holder (pid, host,
the boot, the process's start time, the command); a lock whose holder is
gone (same host: pid dead, reused by another process, or another boot) is
cleared with a notice, so a command killed by SIGKILL, the OOM killer or a
reboot never wedges the store; a live holder's lock refuses the second
command, naming it.
"""
import contextlib
import errno
import json
import os
import socket
import sys
import time

from common import cli
from common.atomic import write_text

MARK = ".reid-workflow"
CONFIG_DIR = ".workflow"
RECORDS = os.path.join(CONFIG_DIR, "stages")
FAILED = os.path.join(CONFIG_DIR, "failed")
RUNNING = os.path.join(CONFIG_DIR, "running")
JOB_LOGS = os.path.join(CONFIG_DIR, "jobs")
DATA_CACHE = os.path.join(CONFIG_DIR, "data.json")
LOCK = os.path.join(CONFIG_DIR, "lock.json")
WORK = "work"
SNAKEMAKE_LOCKS = os.path.join(".snakemake", "locks")


def claim(store):
    """The store is ours: new, empty, or marked by an earlier run. A folder
    holding anything else (another tool's, or a run directory of the layout
    before the workflow) is refused, never written into."""
    mark = os.path.join(store, MARK)
    if os.path.exists(store) and not os.path.isdir(store):
        raise NotADirectoryError("--run-dir %s is an existing file; give a folder" % store)
    if os.path.isdir(store) and os.listdir(store) and not os.path.isfile(mark):
        old = os.path.isfile(os.path.join(store, "experiment.txt"))
        raise cli.InputError("%s %s; give another --run-dir" % (
            store, "is a run directory of the layout before the workflow (one folder per "
                   "experiment)" if old else "holds files this package did not make"))
    os.makedirs(store, exist_ok=True)
    if not os.path.isfile(mark):
        write_text(mark, "made by experiments/workflow.py: the stages of tools.reproduce\n")


# ---- a stage's files ----------------------------------------------------

def work_dir(stage):
    return os.path.join(WORK, stage.kind, stage.id)


def record_file(store, stage):
    return os.path.join(store, RECORDS, stage.kind, stage.id + ".json")


def read_record(store, stage):
    """The causes a finished stage was made with, or None (never finished,
    interrupted, or made before records were kept)."""
    try:
        with open(record_file(store, stage)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_record(store, stage, causes):
    write_text(record_file(store, stage), json.dumps(causes, indent=1, sort_keys=True) + "\n")


def forget(store, stage):
    """A stage about to be made again has no record until it completes."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(record_file(store, stage))


def failure_file(stage):
    return os.path.join(FAILED, stage.id + ".txt")


def job_log(kind, stage_id):
    """Where a job's own output (its bars, its lines, a failure's
    traceback with --debug) goes when the terminal shows only the run's
    start and done lines (experiments/workflow.py job_command)."""
    return os.path.join(JOB_LOGS, kind, stage_id + ".log")


def running_file(stage):
    """Marks a stage whose job is running (experiments/monitor.py's start)."""
    return os.path.join(RUNNING, stage.id)


# ---- the lock -----------------------------------------------------------

def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def _started(pid):
    """A process's start time (clock ticks since boot), None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rpartition(")")[2].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _holder():
    return {"pid": os.getpid(), "host": socket.gethostname(), "boot": _boot_id(),
            "started": _started(os.getpid()), "command": " ".join(["python"] + sys.argv),
            "since": time.strftime("%Y-%m-%d %H:%M:%S")}


def _alive(holder):
    """Whether the holder of a lock still runs; None where that cannot be
    told from here (another host)."""
    if holder.get("host") != socket.gethostname():
        return None
    if holder.get("boot") and holder["boot"] != _boot_id():
        return False
    started = _started(int(holder.get("pid", -1)))
    return started is not None and started == holder.get("started")


def _describe(holder):
    return "pid %s on %s (%s, since %s)" % (holder.get("pid"), holder.get("host"),
                                           holder.get("command"), holder.get("since"))


def _read_lock(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def _clear_stale_snakemake_locks(store):
    """Snakemake's own locks left by a command of ours that is gone (ours
    holds the store, so no other is running): cleared with a notice."""
    folder = os.path.join(store, SNAKEMAKE_LOCKS)
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    for name in names:
        os.remove(os.path.join(folder, name))
    if names:
        print("notice: %s: cleared Snakemake's locks of a run that did not end (%d file(s))"
              % (store, len(names)), file=sys.stderr)


@contextlib.contextmanager
def held(store):
    """Hold `store` for this command (see the module docstring)."""
    path = os.path.join(store, LOCK)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    me = _holder()
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _read_lock(path)
            if holder is None:
                continue
            alive = _alive(holder) if holder else False
            if alive is False:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                print("notice: %s: cleared the lock of %s, which is no longer running"
                      % (store, _describe(holder) if holder else "an unreadable holder"),
                      file=sys.stderr)
                continue
            raise cli.InputError(
                "%s is in use by %s%s: wait for it to end, or give another --run-dir"
                % (store, _describe(holder), "" if alive else
                   "; from another host, it cannot be told whether it still runs (remove %s "
                   "once it has ended)" % path))
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:
        raise OSError(errno.EBUSY, "could not take the lock %s" % path)
    try:
        _clear_stale_snakemake_locks(store)
        yield
    finally:
        if (_read_lock(path) or {}).get("pid") == me["pid"]:
            os.remove(path)
