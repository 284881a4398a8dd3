"""Signals and Caffe's log around a training loop: SIGINT and SIGTERM held
while a snapshot and its record are written, and glog's output (stderr)
sent into the stage's train.log while the terminal keeps the progress
bar."""
import contextlib
import os
import signal
import sys

from common import caffe_env
import caffe

_glog_ready = False


class Interrupted(Exception):
    """Raised by the SIGTERM handler so a kill snapshots like Ctrl-C."""


@contextlib.contextmanager
def signals_held(swallow=False):
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


def redirect_glog(log_path):
    """Send Caffe's glog (stderr, INFO and up) to log_path. Returns the saved
    original stderr descriptor and glog level (restore_glog puts them back)
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


def restore_glog(saved):
    """Undo redirect_glog: stderr back on the terminal, glog's level back
    (library use stays quiet after a training stage in the same process)."""
    fd, level = saved
    os.dup2(fd, 2)
    os.close(fd)
    caffe_env.set_glog_level(level)
