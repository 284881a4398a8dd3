"""experiments/demo.py's chance level, by hand: a random ranking's expected
rank-1 under Market's rule is, per query with a match, good / (good + other
non-junk gallery images); its figures over seeds (mean and sample std, by
hand) and the plan of several seeds."""
from collections import Counter
from dataclasses import asdict

import numpy as np
import pytest

from evaluation.features import save_features
from evaluation.report import table
from experiments.demo import CAPTIONS, Settings, chance_rank1, over_seeds
from experiments.recipes import graph


def _subset(pids, cams):
    n = len(pids)
    return {"features": np.zeros((n, 2), np.float32), "pids": np.array(pids), "cams": np.array(cams),
            "index": np.arange(n)}


def test_chance_rank1_by_hand(tmp_path):
    # query 1 (cam 1): gallery has person 1 in cam 2 (good), person 1 in cam 1 (junk),
    # person 2, a distractor 0 and junk -1 → 1 good of 3 non-junk
    # query 2 (cam 2): person 2 in cam 1 (good) → 1 good of 4 non-junk (the -1 is junk)
    # query 3 has no match and does not count
    gallery = _subset([1, 1, 2, 0, -1], [2, 1, 1, 3, 2])
    query = _subset([1, 2, 3], [1, 2, 1])
    path = str(tmp_path / "f.npz")
    save_features(path, {"query": query, "gallery": gallery}, {})
    assert chance_rank1(path) == (1 / 3 + 1 / 4) / 2


def test_over_seeds_by_hand():
    runs = [{"name": "r", "cmc": [0.5, 0.7], "mAP": 0.2, "paper": None},
            {"name": "r", "cmc": [0.3, 0.9], "mAP": 0.4}]
    row = over_seeds("x", runs, (3, 7))
    assert np.allclose(row["cmc"], [0.4, 0.8]) and np.isclose(row["mAP"], 0.3)
    # sample standard deviation (n - 1): |0.5 - 0.3| / sqrt(2)
    assert np.allclose(row["cmc_std"], [0.2 / 2 ** 0.5] * 2)
    assert np.isclose(row["mAP_std"], 0.2 / 2 ** 0.5)
    assert row["seeds"] == 2 and row["paper"] is None
    assert row["per_seed"] == [{"seed": 3, "rank1": 0.5, "mAP": 0.2},
                               {"seed": 7, "rank1": 0.3, "mAP": 0.4}]
    cells, _ = table([row])[0]
    assert cells[0] == "x (mean ± std of 2 seeds)" and cells[1] == "40.00 ± 14.14"
    one = over_seeds("x", runs[:1], (3,))
    assert "cmc_std" not in one and table([one])[0][0][1] == "50.00"


@pytest.mark.parametrize("seeds", [(), (1, 1), (-1,), (0.5,)])
def test_settings_refuse_seeds_that_are_not_distinct_integers(seeds):
    with pytest.raises(ValueError, match="demo seeds"):
        Settings(seeds=seeds)


def test_seeds_share_the_data_and_the_source_model_and_each_trains_its_own():
    g = graph({"experiments": ["demo"], "options": {"data_root": "/nonexistent"},
               "demo": asdict(Settings(seeds=(0, 5))), "run": {}})
    (report,) = g.experiments["demo"]
    stages = report.stages()
    kinds = Counter(s.kind for s in stages)
    # two synthetic sets, their LMDBs and the source model (the first seed's),
    # once; per seed a fine-tuned Geng16 and an MTDnet
    assert kinds["split"] == 2 and kinds["lmdb"] == 5
    assert kinds["geng16"] == 3 and kinds["mtdnet"] == 2 and kinds["scores"] == 2
    (source,) = [s for s in stages if s.label == "geng16_source"]
    assert source.config["seed"] == 0
    trained = sorted((s for s in stages if s.kind in ("geng16", "mtdnet") and s is not source),
                     key=lambda s: (s.label, s.config["seed"]))
    for a, b in zip(trained[::2], trained[1::2]):
        assert (a.label, a.config["seed"], b.config["seed"]) == (b.label, 0, 5)
        assert dict(a.config, seed=None) == dict(b.config, seed=None)
    assert report.config["seeds"] == [0, 5]
    assert sorted(n for n in report.inputs if n.startswith("seed")) == sorted(
        "seed%d_%d" % (s, i) for s in (0, 5) for i in range(len(CAPTIONS)))


def test_seeds_option_reads_distinct_integers_and_refuses_the_rest():
    import argparse
    from common.cli import seed_list
    assert seed_list("0,1,2") == (0, 1, 2) and seed_list("7") == (7,)
    for bad in ("1,1", "-1", "a", "0,,1", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="distinct integers"):
            seed_list(bad)
