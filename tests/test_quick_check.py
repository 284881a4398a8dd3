"""python -m tools.quick_check DATASET ROOT — parse, train
Geng16's Table 8 "no ImageNet" recipe at a CPU schedule, evaluate with the
set's protocol, rank-1 beside chance and the measured range, exit status."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from common import cli
from data_prep.__main__ import DATASETS
from experiments import quick_check
from tools import quick_check as quick_check_command
from evaluation.features import save_features

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CUHK01 = os.path.join(os.path.dirname(ROOT), "shared", "data", "CUHK01")


def _subset(pids, cams):
    n = len(pids)
    return {"features": np.zeros((n, 2), np.float32), "pids": np.array(pids),
            "cams": np.array(cams), "index": np.arange(n)}


def test_every_dataset_the_parsers_know_is_accepted():
    assert set(quick_check.DATASET_CHOICES) == set(DATASETS) - {"merge"}
    for dataset in quick_check.DATASET_CHOICES:
        quick_check.parser_default(dataset)  # each has a parser module
    assert quick_check.parser_default("cuhk01") == "485/486"


def test_chance_single_shot_by_hand(tmp_path):
    # probe 1 (cam 1): persons 1, 2, 3 have a cam-2 image -> 1/3; probe 2 (cam 2):
    # persons 2 and 4 have a cam-1 image -> 1/2; probe 5 has no image: a miss, 0
    gallery = _subset([1, 2, 3, 2, 4], [2, 2, 2, 1, 1])
    query = _subset([1, 2, 5], [1, 2, 1])
    path = str(tmp_path / "f.npz")
    save_features(path, {"query": query, "gallery": gallery}, {})
    assert quick_check.chance_single_shot(path) == pytest.approx((1 / 3 + 1 / 2 + 0) / 3)


def test_verdict_measured_range_or_chance_margin():
    assert quick_check.verdict(0.05, 0.002, (0.02, 0.10))[0]
    assert not quick_check.verdict(0.01, 0.002, (0.02, 0.10))[0]
    assert not quick_check.verdict(0.30, 0.002, (0.02, 0.10))[0]   # too good: a leak
    ok, text = quick_check.verdict(0.03, 0.01, None)             # no range: 4 x chance
    assert not ok and "BELOW" in text
    assert quick_check.verdict(0.05, 0.01, None)[0]


def test_measured_ranges_exclude_chance():
    # a model that learned nothing (rank-1 at chance) must fail the check
    chance = {("cuhk01", "485/486"): 1 / 486, ("cuhk01", "871/100"): 1 / 100}
    for key, (low, high) in quick_check.EXPECTED.items():
        assert low > chance[key] and high < 1, key
        assert not quick_check.verdict(chance[key], chance[key], (low, high))[0]


def test_missing_root_is_one_line_bad_input(tmp_path, capsys):
    status = cli.run(quick_check_command.main, ["cuhk01", str(tmp_path / "nowhere"),
                                        "--run-dir", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == cli.BAD_INPUT and len(err) == 1
    assert err[0].startswith("error:") and "nowhere" in err[0]


@pytest.mark.skipif(not os.path.isdir(CUHK01),
                    reason="real CUHK01 not at ../shared/data/CUHK01 (CI has it)")
def test_quick_check_on_real_cuhk01(tmp_path):
    """The whole command on the real images at 1/20 of the schedule: parse
    (971 persons), train, extract and evaluate single-shot; the printed
    chance is 1 / 100 test persons (871/100), and the exit status is the one
    the printed numbers call for (no measured range at another scale: the
    chance margin)."""
    proc = subprocess.run([sys.executable, "-m", "tools.quick_check", "cuhk01", CUHK01,
                           "--protocol", "871/100", "--run-dir", str(tmp_path / "run"),
                           "--scale", "0.05", "--no-progress"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1500)
    out = proc.stdout + proc.stderr
    assert "cuhk01: 3884 images, 971 identities, 2 cameras" in out
    m = re.search(r"single-shot evaluation, 10 iterations, .* rank-1 ([\d.]+)%, "
                  r"chance ([\d.]+)%", out)
    assert m, out[-3000:]
    rank1, chance = float(m.group(1)) / 100, float(m.group(2)) / 100
    assert chance == pytest.approx(0.01)
    ok = quick_check.verdict(rank1, chance, None)[0]
    assert proc.returncode == (0 if ok else cli.FAILURE), out[-3000:]
    if not ok:
        assert out.strip().splitlines()[-1].startswith("error: quick_check: cuhk01 rank-1")
