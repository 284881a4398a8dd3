"""experiments/demo.py's chance level, by hand: a random ranking's expected
rank-1 under Market's rule is, per query with a match, good / (good + other
non-junk gallery images)."""
import numpy as np

from experiments.demo import chance_rank1
from evaluation.features import save_features


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
