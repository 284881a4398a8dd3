"""Geng16's Python layers through real pycaffe: in-batch pair
generation (counts, balance, true positives, gradient accumulation),
pairwise-consistent dropout (shared masks, identity at TEST) and the
batch-all triplet loss, each with a finite-difference gradient check."""
import numpy as np
import pytest

import caffe
from layers import pair_generation as pg, triplet_loss as tl
from tests.helpers import check_gradient, python_layer_net


def _labels(k, m, seed=0):
    """A K × M identity-sampled label vector (consecutive rows share an id)."""
    ids = np.random.RandomState(seed).choice(1000, k, replace=False)
    return np.repeat(ids, m).astype(np.float32)


@pytest.mark.parametrize("k,m,pos,neg", [(32, 2, 32, 1984), (4, 3, 12, 54), (2, 5, 20, 25),
                                         (8, 4, 48, 448)])
def test_pair_counts_and_balance(k, m, pos, neg):
    assert pg.structure_counts(k * m, m) == (pos, neg)  # K·C(M,2) and C(KM,2) − that
    labels = _labels(k, m)
    left, right, same = pg.generate_pairs(labels, np.random.RandomState(1))
    total = 2 * max(pos, neg)
    assert len(same) == total == pg.balanced_pair_count(k * m, m)
    assert same.sum() == total // 2                      # balanced
    assert np.all(left < right)                          # unordered pairs, no self-pairs
    is_pos = same == 1
    assert np.all(labels[left[is_pos]] == labels[right[is_pos]])    # true positives
    assert np.all(labels[left[~is_pos]] != labels[right[~is_pos]])  # true negatives
    # every distinct pair of the batch is present
    keys = set(zip(left.tolist(), right.tolist()))
    assert len(keys) == pos + neg
    # the duplicated class: each pair floor(t/n) or ceil(t/n) times
    codes = left[is_pos] * (k * m) + right[is_pos]
    counts = np.unique(codes, return_counts=True)[1]
    assert counts.min() >= (total // 2) // pos and counts.max() <= -(-(total // 2) // pos)


def test_geng16_batch_gives_3968_pairs():
    _, _, same = pg.generate_pairs(_labels(32, 2), np.random.RandomState(0))
    assert (len(same), int(same.sum())) == (3968, 1984)


def test_pair_generation_needs_both_classes():
    with pytest.raises(ValueError, match="positive and .* negative"):
        pg.generate_pairs(np.arange(6), np.random.RandomState(0))


def test_pair_generation_layer_forward_and_accumulated_gradient():
    k, m, dim = 3, 2, 5   # 3 positives, 12 negatives: 4 copies each, no random draw
    rng = np.random.RandomState(0)
    x = rng.randn(k * m, dim).astype(np.float32)
    labels = _labels(k, m)
    net, bottoms, tops = python_layer_net("layers.pair_generation", "PairGeneration",
                                          [x, labels], params={"m": m, "seed": 3}, ntop=3)
    net.forward()
    left, right, same = pg.generate_pairs(labels, np.random.RandomState(3))
    np.testing.assert_array_equal(net.blobs[tops[0]].data, x[left])
    np.testing.assert_array_equal(net.blobs[tops[1]].data, x[right])
    np.testing.assert_array_equal(net.blobs[tops[2]].data, same)
    assert len(same) == 24
    # unit diffs on both sides: each image's gradient = number of pairs it is in
    net.backward(**{tops[0]: np.ones((24, dim), np.float32), tops[1]: np.ones((24, dim), np.float32),
                    tops[2]: np.zeros(24, np.float32)})
    times = np.bincount(np.concatenate([left, right]), minlength=k * m)
    np.testing.assert_array_equal(net.blobs[bottoms[0]].diff, np.repeat(times[:, None], dim, 1))
    assert times.min() > 1
    check_gradient(net, bottoms, tops, check=[bottoms[0]])


def test_pair_generation_rejects_a_batch_that_is_not_k_by_m():
    labels = np.array([0, 0, 1, 1, 1, 2], np.float32)   # declared M = 2, one id has 3 images
    net, _, _ = python_layer_net("layers.pair_generation", "PairGeneration",
                                 [np.zeros((6, 2), np.float32), labels], params={"m": 2}, ntop=3)
    with pytest.raises(Exception, match="not identity-sampled"):
        net.forward()


def test_pair_generation_rejects_unknown_param():
    with pytest.raises(Exception, match="unknown param_str key"):
        python_layer_net("layers.pair_generation", "PairGeneration",
                         [np.zeros((4, 2), np.float32), _labels(2, 2)], params={"K": 2}, ntop=3)


class _ReplayRng:
    """Stands in for the layer's generator so that finite differences see
    fixed masks: every forward gets the same sequence of `draws` distinct
    draws (one per mask the layer takes, so random dropout's bottoms keep
    masks of their own)."""

    def __init__(self, draws):
        self.draws, self.calls = draws, 0

    def random(self, shape, dtype):
        k = self.calls % self.draws
        self.calls += 1
        return np.random.default_rng(7 + k).random(shape, dtype=dtype)


def _dropout_net(sides, ratio, consistent, phase=caffe.TRAIN, seed=0):
    """The dropout layer over the arrays `sides` (a pair's or a triplet's members)."""
    return python_layer_net("layers.pair_dropout", "PairwiseConsistentDropout", sides,
                            ntop=len(sides), phase=phase,
                            params={"ratio": ratio, "consistent": consistent, "seed": seed})


def test_consistent_dropout_shares_one_mask_per_pair():
    pairs, dim, ratio = 200, 64, 0.4
    rng = np.random.RandomState(0)
    x = rng.uniform(1, 2, (pairs, dim)).astype(np.float32)   # non-zero, so masks are visible
    y = rng.uniform(1, 2, (pairs, dim)).astype(np.float32)
    net, _, tops = _dropout_net([x, y], ratio, True)
    net.forward()
    mask_a = net.blobs[tops[0]].data / x
    mask_b = net.blobs[tops[1]].data / y
    np.testing.assert_allclose(mask_a, mask_b, rtol=1e-6)          # both members, one mask
    values = np.unique(np.round(mask_a, 5))
    np.testing.assert_allclose(values, [0, 1 / (1 - ratio)], rtol=1e-5)  # inverted scaling
    kept = mask_a > 0
    assert len({row.tobytes() for row in kept}) == pairs             # every pair its own mask
    assert abs(1 - kept.mean() - ratio) < 0.02
    net.forward()
    assert np.any((net.blobs[tops[0]].data > 0) != kept)             # a new mask each forward


def test_random_dropout_masks_each_side_independently():
    x = np.ones((300, 32), np.float32)
    net, _, tops = _dropout_net([x, x.copy()], 0.5, False)
    net.forward()
    a, b = net.blobs[tops[0]].data > 0, net.blobs[tops[1]].data > 0
    assert abs((a != b).mean() - 0.5) < 0.03      # independent masks disagree half the time


def test_dropout_seed_makes_it_repeatable():
    x = np.ones((20, 8), np.float32)
    outs = []
    for _ in range(2):
        net, _, tops = _dropout_net([x, x.copy()], 0.5, True, seed=11)
        net.forward()
        outs.append(net.blobs[tops[0]].data.copy())
    np.testing.assert_array_equal(outs[0], outs[1])


def test_dropout_is_identity_at_test():
    rng = np.random.RandomState(1)
    x, y = rng.randn(10, 6).astype(np.float32), rng.randn(10, 6).astype(np.float32)
    net, bottoms, tops = _dropout_net([x, y], 0.7, True, phase=caffe.TEST)
    net.forward()
    np.testing.assert_array_equal(net.blobs[tops[0]].data, x)
    np.testing.assert_array_equal(net.blobs[tops[1]].data, y)
    check_gradient(net, bottoms, tops)


@pytest.mark.parametrize("sides", [2, 3])   # pairs (PV) and triplets (TL)
@pytest.mark.parametrize("consistent", [True, False])
def test_dropout_gradient(consistent, sides):
    rng = np.random.RandomState(2)
    x = [rng.randn(6, 5).astype(np.float32) for _ in range(sides)]
    net, bottoms, tops = _dropout_net(x, 0.5, consistent)
    layer = net.layers[list(net._layer_names).index("t0")]
    layer.rng = _ReplayRng(1 if consistent else sides)
    net.forward()
    kept = [net.blobs[t].data != 0 for t in tops]
    # consistent: one mask for every side; random: each side its own
    assert all(np.array_equal(kept[0], k) == consistent for k in kept[1:])
    check_gradient(net, bottoms, tops)


def test_batch_all_triplets():
    labels = _labels(32, 2)
    a, p, n = tl.batch_all_triplets(labels)
    assert len(a) == tl.triplet_count(64, 2) == 3968
    assert np.all(labels[a] == labels[p]) and np.all(a != p) and np.all(labels[a] != labels[n])
    labels = _labels(3, 3)
    a, p, n = tl.batch_all_triplets(labels)
    assert len(a) == tl.triplet_count(9, 3) == 9 * 2 * 6
    assert len(set(zip(a.tolist(), p.tolist(), n.tolist()))) == len(a)


def test_triplet_loss_hand_computed():
    a = np.array([[0.0, 0.0], [1.0, 1.0]])
    p = np.array([[1.0, 0.0], [1.0, 1.0]])
    n = np.array([[0.0, 2.0], [1.0, 1.5]])
    # hinges: 1 − 4 + 1 = −2 → 0; 0 − 0.25 + 1 = 0.75
    loss, _ = tl.triplet_loss_forward(a, p, n, margin=1.0)
    assert loss == pytest.approx(0.75 / 2)


def test_triplet_loss_gradient():
    rng = np.random.RandomState(3)
    a, p, n = (rng.randn(7, 4).astype(np.float32) for _ in range(3))
    net, bottoms, tops = python_layer_net("layers.triplet_loss", "TripletLoss", [a, p, n],
                                          params={"margin": 2.0}, loss_weight=1)
    net.forward()
    ref, hinge = tl.triplet_loss_forward(a.astype(np.float64), p, n, 2.0)
    assert net.blobs[tops[0]].data[0] == pytest.approx(ref, rel=1e-5)
    assert 0 < (hinge > 0).sum() < len(hinge)    # both sides of the hinge exercised
    check_gradient(net, bottoms, tops)


def test_in_batch_triplets_gradient_accumulates():
    k, m = 3, 2
    x = np.random.RandomState(4).randn(k * m, 3).astype(np.float32)
    net, bottoms, tops = python_layer_net("layers.triplet_loss", "InBatchTriplets",
                                          [x, _labels(k, m)], params={"m": m}, ntop=3)
    net.forward()
    a, p, n = tl.batch_all_triplets(_labels(k, m))
    for top, idx in zip(tops, (a, p, n)):
        np.testing.assert_array_equal(net.blobs[top].data, x[idx])
    check_gradient(net, bottoms, tops, check=[bottoms[0]])
