"""Quiet logs when nobody watches: with stderr not a TTY (CI,
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


def test_the_training_bar_draws_a_few_times_when_piped(tmp_path):
    # tools.train's bar goes to the terminal that Caffe's glog is moved off:
    # piped, a run of many short chunks still draws it only a few times
    (tmp_path / "net.prototxt").write_text(
        'layer { name: "data" type: "DummyData" top: "data" top: "label" dummy_data_param {'
        ' shape { dim: 16 dim: 3 dim: 48 dim: 48 } shape { dim: 16 }'
        ' data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 1 } } }\n'
        'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param {'
        ' num_output: 16 kernel_size: 3 weight_filler { type: "xavier" } } }\n'
        'layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc" inner_product_param {'
        ' num_output: 4 weight_filler { type: "xavier" } } }\n'
        'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }\n')
    (tmp_path / "solver.prototxt").write_text(
        'net: "net.prototxt"\nbase_lr: 0.001\nlr_policy: "fixed"\nmax_iter: 60\ndisplay: 1\n')
    proc = subprocess.run([sys.executable, "-m", "tools.train", "--solver",
                           str(tmp_path / "solver.prototxt"), "--run-dir", str(tmp_path / "run")],
                          cwd=ROOT, capture_output=True, timeout=300)
    log = proc.stderr.decode()
    assert proc.returncode == 0, log[-2000:]
    assert 1 <= log.count("\rrun:") <= 3, log[-1000:]
