"""Training curves: each loss and the learning rate of a
training stage against iteration, read from Caffe's own log by Caffe's own
`tools/extra/parse_log.py` (installed with the build, run as a script).

A stage is a training/stage.py run directory (train.log, state.json); a Geng16
two-stepped stage (training/two_step.py) is a folder with step1/ and step2/,
drawn on one time axis: step 2's iterations follow step 1's, a dashed line
where step 2 starts. parse_log.py gives each row the learning rate logged
at the display before it (Caffe logs the rate after the losses): a step
in the rate shows one display late, as in every plot made from its tables.
"""
import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from matplotlib.figure import Figure

from common.atomic import atomic_path
from common.layout import LOG, STATE

DECIDES_RESULTS = False   # a report's training curves (common/code_fingerprint.py)

STEPS = ("step1", "step2")
FIXED = ("NumIters", "Seconds", "LearningRate")   # parse_log.py's own columns


def parse_log_script():
    """Caffe's tools/extra/parse_log.py of the imported build."""
    from common import caffe_env
    path = os.path.join(caffe_env.caffe_prefix(), "extra", "parse_log.py")
    if not os.path.isfile(path):
        raise FileNotFoundError("Caffe's parse_log.py is not installed at %s (rerun make setup)"
                                % path)
    return path


def parse(log):
    """parse_log.py's training rows of a glog training log: a list of
    {column: float} (NumIters, Seconds, LearningRate, each train net output)."""
    if not os.path.isfile(log):
        raise FileNotFoundError("training log not found: %s" % log)
    with tempfile.TemporaryDirectory(prefix="reid-parse-log-") as out:
        proc = subprocess.run([sys.executable, parse_log_script(), os.path.abspath(log), out],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError("Caffe's parse_log.py failed on %s: %s"
                               % (log, (proc.stderr.strip().splitlines() or ["no message"])[-1]))
        table = os.path.join(out, os.path.basename(log) + ".train")
        if not os.path.isfile(table):  # parse_log.py writes none for a log without rows
            return []
        with open(table) as f:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def is_two_stepped(stage_dir):
    return all(os.path.isfile(os.path.join(stage_dir, s, LOG)) for s in STEPS)


def stage_dirs(run_dir, stages):
    """The stages to draw from training/stage.py run folders relative to
    `run_dir` (provenance's stage_iterations keys): a step1/step2 pair
    becomes its two-stepped parent. Sorted, each once."""
    out = []
    for rel in sorted(stages):
        parent = os.path.dirname(rel)
        if os.path.basename(rel) in STEPS and parent and is_two_stepped(os.path.join(run_dir, parent)):
            rel = parent
        stage = os.path.join(run_dir, rel)
        if rel not in out and (is_two_stepped(stage) or os.path.isfile(os.path.join(stage, LOG))):
            out.append(rel)
    return out


def stage_rows(stage_dir):
    """[(step name or None, rows with NumIters on the stage's time axis)]."""
    if not is_two_stepped(stage_dir):
        return [(None, parse(os.path.join(stage_dir, LOG)))]
    parts, offset = [], 0.0
    for step in STEPS:
        rows = parse(os.path.join(stage_dir, step, LOG))
        for row in rows:
            row["NumIters"] += offset
        parts.append((step, rows))
        offset += trained(os.path.join(stage_dir, step), rows)
    return parts


def trained(step_dir, rows):
    """Iterations a step trained: its state.json's (the log shows only every
    `display`-th), else the last logged one."""
    try:
        with open(os.path.join(step_dir, STATE)) as f:
            return float(json.load(f)["iter"])
    except (OSError, ValueError, KeyError, TypeError):
        return rows[-1]["NumIters"] if rows else 0.0


def loss_names(parts):
    """The train net outputs to plot: those named *loss*, else all."""
    names = []
    for _, rows in parts:
        for row in rows:
            names += [k for k in row if k not in FIXED and k not in names]
    losses = [n for n in names if "loss" in n]
    return losses or names


def plot_stage(stage_dir, out_png, title=None):
    """Write the curves of one stage to `out_png`; returns the outputs drawn."""
    parts = stage_rows(stage_dir)
    if not any(rows for _, rows in parts):
        raise ValueError("%s: parse_log.py found no training iterations in its log" % stage_dir)
    names = loss_names(parts)
    fig = Figure(figsize=(7, 5.2))
    loss_ax, lr_ax = fig.subplots(2, 1, sharex=True, gridspec_kw=dict(height_ratios=(3, 1)))
    colours = {}
    for step, rows in parts:
        it = np.array([r["NumIters"] for r in rows])
        for name in names:
            y = np.array([r.get(name, np.nan) for r in rows])
            line, = loss_ax.plot(it, y, color=colours.get(name), lw=1.2,
                                 label=None if name in colours else name)
            colours[name] = line.get_color()
        lr_ax.plot(it, [r["LearningRate"] for r in rows], color="black", lw=1.2)
        if step == STEPS[1] and rows:
            for ax in (loss_ax, lr_ax):
                ax.axvline(rows[0]["NumIters"], color="grey", ls="--", lw=1)
            loss_ax.text(rows[0]["NumIters"], 1.0, " step 2 (all layers)", va="top", fontsize=8,
                         transform=loss_ax.get_xaxis_transform(), color="grey")
            loss_ax.text(0, 1.0, " step 1 (classifier)", va="top", fontsize=8,
                         transform=loss_ax.get_xaxis_transform(), color="grey")
    loss_ax.set_ylabel("loss")
    loss_ax.grid(True, alpha=0.3)
    loss_ax.legend(fontsize="x-small", ncol=2, loc="upper right")
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_xlabel("iteration" + (" (step 1, then step 2)" if len(parts) > 1 else ""))
    lr_ax.grid(True, alpha=0.3)
    loss_ax.set_title(title or os.path.basename(os.path.normpath(stage_dir)), fontsize=10)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    return names
