"""Fidelity choices (issue 14 §4): each reading of the papers and of the
authors' code that differs is a named option; these tests show each option
does what it says, through real pycaffe nets and generated prototxt."""
import numpy as np
import pytest

from layers import pair_generation as pg
from tests.helpers import check_gradient, python_layer_net


def _labels(k, m):
    return np.repeat(np.arange(k) * 7 + 3, m).astype(np.float32)


# Geng16 §5.2: "32 people … two images for each … resulting in 3,968 positive
# and negative pairs being generated respectively". Counted by hand for a
# 64-image batch: unordered C(64,2) = 2,016 pairs, 32 of them positive, so
# 1,984 negatives and 3,968 pairs once balanced; ordered 64 positives (32 × 2
# directions) and 64 × 62 = 3,968 negatives, 7,936 pairs once balanced.
@pytest.mark.parametrize("pairs,pos,neg,total", [("unordered", 32, 1984, 3968),
                                                 ("ordered", 64, 3968, 7936)])
def test_in_batch_pair_counts_of_both_readings(pairs, pos, neg, total):
    assert pg.structure_counts(64, 2, pairs) == (pos, neg)
    assert pg.balanced_pair_count(64, 2, pairs) == total
    labels = _labels(32, 2)
    net, _, tops = python_layer_net("layers.pair_generation", "PairGeneration",
                                    [np.zeros((64, 3), np.float32), labels],
                                    params={"pairs": pairs}, ntop=3)
    net.forward()
    same = net.blobs[tops[2]].data
    assert (len(same), int(same.sum())) == (total, total // 2)
    left, right, same = pg.generate_pairs(labels, np.random.RandomState(0), pairs)
    negatives = set(zip(left[same == 0].tolist(), right[same == 0].tolist()))
    assert len(negatives) == neg == total // 2  # every negative exactly once
    if pairs == "ordered":   # both directions of each pair
        assert negatives == {(j, i) for i, j in negatives}
    else:
        assert all(i < j for i, j in negatives)


def test_ordered_pairs_gradient_accumulates():
    k, m, dim = 3, 2, 4  # ordered: 6 positives, 24 negatives → 4 copies each, no random draw
    x = np.random.RandomState(0).randn(k * m, dim).astype(np.float32)
    net, bottoms, tops = python_layer_net("layers.pair_generation", "PairGeneration",
                                          [x, _labels(k, m)],
                                          params={"pairs": "ordered", "seed": 1}, ntop=3)
    net.forward()
    assert net.blobs[tops[2]].data.shape == (48,)
    check_gradient(net, bottoms, tops, check=[bottoms[0]])


def test_pairs_param_is_checked():
    with pytest.raises(Exception, match="'pairs' must be unordered or ordered"):
        python_layer_net("layers.pair_generation", "PairGeneration",
                         [np.zeros((4, 2), np.float32), _labels(2, 2)],
                         params={"pairs": "both"}, ntop=3)
