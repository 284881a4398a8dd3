"""Quiet logs when nobody watches (issue 15 §4): with stderr not a TTY (CI,
nohup, Slurm) a lasting progress bar draws a few times (tqdm's mininterval)
and a transient one not at all (tqdm's disable=None); on a TTY the bars
stay as they are. Checked on a real `python -m data_prep` run: synthetic
images drawn, parsed as Market-1501 and written to an LMDB."""
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRANSIENT = "synthetic: bounding_box_train"    # market1501.py's per-folder bar (leave=False)
LASTING = ("synthetic: drawing", "LMDB ")


def _argv(tmp_path):
    return [sys.executable, "-m", "data_prep", "synthetic", str(tmp_path / "synth"), "--num-ids",
            "16", "--out", str(tmp_path / "split.json"), "--lmdb", str(tmp_path / "lmdb"),
            "--size", "32", "16"]


def test_not_a_tty_each_bar_draws_a_few_times(tmp_path):
    # bytes: text mode would turn the bars' carriage returns into newlines
    proc = subprocess.run(_argv(tmp_path), cwd=ROOT, capture_output=True, timeout=300)
    out, log = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, log[-2000:]
    assert TRANSIENT not in log                      # disabled: it would only be cleared again
    for desc in LASTING:
        # the bar opens and closes (a run this short passes no 30 s interval)
        assert 1 <= log.count("\r" + desc) <= 2, (desc, log[-1000:])
    assert log.count("\r") <= 2 * len(LASTING)
    assert TRANSIENT not in out and "identities" in out   # the summary lines stay


def test_on_a_tty_the_bars_stay(tmp_path):
    master, slave = pty.openpty()
    # a terminal of 120 columns (a fresh pty has 0, where tqdm draws nothing)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    chunks = []
    reader = threading.Thread(target=lambda: _drain(master, chunks))
    reader.start()
    try:
        proc = subprocess.run(_argv(tmp_path), cwd=ROOT, stdout=slave, stderr=slave, timeout=300)
    finally:
        os.close(slave)
        reader.join(timeout=30)
        os.close(master)
    log = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, log[-2000:]
    assert TRANSIENT in log and all(desc in log for desc in LASTING)


def _drain(fd, chunks):
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:   # the other end closed
            return
        if not data:
            return
        chunks.append(data)
