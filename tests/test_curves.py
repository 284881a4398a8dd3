"""Training curves (evaluation/curves.py): read from a
real training/stage.py stage's glog by Caffe's own parse_log.py; a two-stepped
stage's step 2 continues step 1's time axis."""
import re

import numpy as np
import pytest
from PIL import Image

from tests.fixtures_results import train_two_stepped
from evaluation import curves


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run") / "stage"
    train_two_stepped(str(folder), iters=(20, 30))
    return str(folder)


def _logged(log):
    """(iteration, loss, lr) as glog wrote them: what parse_log.py must give."""
    text = open(log).read()
    losses = [float(v) for v in re.findall(r"Train net output #0: loss = ([-\d.e+]+)", text)]
    lrs = [float(v) for v in re.findall(r"Iteration \d+, lr = ([-\d.e+]+)", text)]
    iters = [int(v) for v in re.findall(r"Iteration (\d+), lr =", text)]
    return iters, losses, lrs


def test_two_stepped_stage_on_one_time_axis(stage):
    parts = curves.stage_rows(stage)
    assert [step for step, _ in parts] == ["step1", "step2"]
    for (step, rows), offset in zip(parts, (0, 20)):   # step 1 trained 20 iterations
        iters, losses, lrs = _logged("%s/%s/train.log" % (stage, step))
        assert [r["NumIters"] for r in rows] == [i + offset for i in iters]
        np.testing.assert_allclose([r["loss"] for r in rows], losses)
        # parse_log.py's own pairing: a row's rate is the one logged at the display before
        np.testing.assert_allclose([r["LearningRate"] for r in rows], lrs[:1] + lrs[:-1])
    assert parts[1][1][0]["LearningRate"] == 0.001 and parts[0][1][0]["LearningRate"] == 0.01


def test_stage_folders_found_from_the_trained_steps(stage, tmp_path):
    import os
    run_dir = os.path.dirname(stage)
    assert curves.stage_dirs(run_dir, {"stage/step1": 20, "stage/step2": 30}) == ["stage"]
    # a one-stepped Geng16 stage has step2/ alone: that step is the stage
    assert curves.stage_dirs(stage, {"step2": 30}) == ["step2"]


def test_plot_draws_every_loss_and_the_step_boundary(stage, tmp_path):
    png = str(tmp_path / "curves.png")
    assert curves.plot_stage(stage, png, "stage") == ["loss"]
    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert pixels.std() > 10                          # not a blank canvas
    blue = np.array([0x1f, 0x77, 0xb4])               # matplotlib's first line colour
    assert (np.abs(pixels - blue).max(axis=-1) < 20).sum() > 200


def test_a_log_without_iterations_is_refused_naming_the_stage(tmp_path):
    (tmp_path / "train.log").write_text("I1201 10:00:00.000000 1 solver.cpp:45] Solving x\n")
    with pytest.raises(ValueError, match="no training iterations"):
        curves.plot_stage(str(tmp_path), str(tmp_path / "c.png"))
    with pytest.raises(FileNotFoundError, match="training log not found"):
        curves.parse(str(tmp_path / "missing" / "train.log"))
