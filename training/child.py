"""A training stage in a forked child process, as the command runs it:
Caffe aborting the child (glog's CHECK, into train.log) is reported in the
parent in one line, and the child dies with the parent."""
import ctypes
import multiprocessing
import multiprocessing.connection
import os
import re
import signal
import sys
import traceback

from common import cli
from common.layout import LOG
from training import multi_gpu
from training.multi_gpu import Stopped
from training.stage import train_stage


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
