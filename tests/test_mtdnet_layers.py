"""MTDnet's Python layers and sampling: finite-difference gradients,
hand-computed values, triplet validity, XNOR truth table, the triplet LMDB
feeder."""
import json

import numpy as np
import pytest
from PIL import Image

import caffe
from data_prep.lmdb_builder import build_lmdb
from data_prep.split_format import validate_split
from tests.helpers import check_gradient, python_layer_net
from layers import triplet_sampling as ts
from layers.triplet_pairs import triplet_pairs_forward
from layers.triplet_rank_loss import triplet_loss_forward

# --- triplet ranking loss -------------------------------------------------


def _triplet_features():
    # Two triplets, 3-D features. Triplet 0: ||a-p||² = 1, ||a-n||² = 0.25 → hinge 1.75.
    # Triplet 1: ||a-p||² = 0, ||a-n||² = 4 → hinge −3 (inactive).
    return np.array([[0, 0, 0], [1, 0, 0], [0, 0.5, 0],
                     [1, 1, 1], [1, 1, 1], [1, 1, 3]], np.float32)


def test_triplet_loss_value_by_hand():
    loss, hinge = triplet_loss_forward(_triplet_features(), margin=1.0)
    np.testing.assert_allclose(hinge, [1.75, -3.0])
    assert loss == pytest.approx(1.75 / 4)  # 1/(2N), N = 2


def test_triplet_loss_layer_forward_and_gradient():
    x = _triplet_features()
    net, bottoms, tops = python_layer_net("layers.triplet_rank_loss", "TripletRankLoss", [x],
                                          loss_weight=1)
    net.forward()
    assert float(net.blobs[tops[0]].data[0]) == pytest.approx(1.75 / 4)
    check_gradient(net, bottoms, tops)


def test_triplet_loss_margin_param():
    net, _, tops = python_layer_net("layers.triplet_rank_loss", "TripletRankLoss",
                                    [_triplet_features()], params={"margin": 0.0}, loss_weight=1)
    net.forward()
    assert float(net.blobs[tops[0]].data[0]) == pytest.approx(0.75 / 4)


def test_triplet_loss_rejects_non_triplet_batch():
    with pytest.raises(Exception, match="multiple of 3"):
        python_layer_net("layers.triplet_rank_loss", "TripletRankLoss",
                         [np.zeros((4, 3), np.float32)], loss_weight=1)


# --- triplet → pairs -------------------------------------------------------


def test_triplet_pairs_forward_layout():
    x = np.arange(6 * 2, dtype=np.float32).reshape(6, 2)  # rows A1 A2 B2 A1' A2' B2'
    left, right, label = triplet_pairs_forward(x)
    np.testing.assert_array_equal(left, x[[0, 3, 0, 3]])
    np.testing.assert_array_equal(right, x[[1, 4, 2, 5]])
    np.testing.assert_array_equal(label, [1, 1, 0, 0])


def test_triplet_pairs_gradient_accumulates_anchor():
    x = np.random.RandomState(1).randn(6, 2, 2, 2).astype(np.float32)
    net, bottoms, tops = python_layer_net("layers.triplet_pairs", "TripletPairs", [x], ntop=3)
    net.forward()
    np.testing.assert_array_equal(net.blobs[tops[2]].data, [1, 1, 0, 0])
    check_gradient(net, bottoms, tops)  # the label top carries no gradient
    # By hand: A1's gradient is the sum of the two left-side diffs.
    net.blobs[tops[0]].diff[...] = 1
    net.blobs[tops[1]].diff[...] = 0
    net.blobs[tops[2]].diff[...] = 0
    net.backward(start=net._layer_names[-1])
    g = net.blobs[bottoms[0]].diff
    assert np.all(g[0::3] == 2) and np.all(g[1::3] == 0) and np.all(g[2::3] == 0)


# --- XNOR labels -----------------------------------------------------------


def test_xnor_truth_table():
    np.testing.assert_array_equal(ts.xnor([0, 0, 1, 1], [0, 1, 0, 1]), [1, 0, 0, 1])


def test_xnor_layer_repeats_source_labels():
    src = np.array([1, 0], np.float32)
    tgt = np.array([1, 1, 0, 0], np.float32)  # positive pairs then negative pairs
    net, _, tops = python_layer_net("layers.xnor_label", "XnorLabel", [src, tgt])
    net.forward()
    np.testing.assert_array_equal(net.blobs[tops[0]].data, [1, 0, 0, 1])


def test_xnor_rejects_non_binary_and_bad_lengths():
    with pytest.raises(ValueError, match="0 or 1"):
        ts.xnor([2], [1])
    with pytest.raises(ValueError, match="multiple"):
        ts.xnor([1, 0], [1, 0, 1])


# --- sampling --------------------------------------------------------------

# 3 persons × 2 cameras × 2 images; person 9 seen by camera 1 only (no pair).
PIDS = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 9])
CAMS = np.array([1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2, 1])


def test_positive_pairs_both_directions():
    pairs = ts.positive_pairs(PIDS, CAMS)
    assert len(pairs) == 3 * 2 * 2 * 2  # per person 2×2 cross-camera pairs, both directions
    assert (0, 2) in map(tuple, pairs) and (2, 0) in map(tuple, pairs)
    assert all(PIDS[i] == PIDS[j] and CAMS[i] != CAMS[j] for i, j in pairs)


def test_triplets_count_validity_and_seed():
    t = ts.sample_triplets(PIDS, CAMS, per_pair=10, seed=3)
    assert t.shape == (24 * 10, 3)
    a, p, n = t.T
    assert np.all(PIDS[a] == PIDS[p]) and np.all(CAMS[a] != CAMS[p])
    assert np.all(PIDS[n] != PIDS[a]) and np.all(CAMS[n] == CAMS[p])
    # ten per ordered positive pair
    _, counts = np.unique(t[:, :2], axis=0, return_counts=True)
    assert np.all(counts == 10)
    np.testing.assert_array_equal(t, ts.sample_triplets(PIDS, CAMS, per_pair=10, seed=3))
    assert not np.array_equal(t, ts.sample_triplets(PIDS, CAMS, per_pair=10, seed=4))


def test_source_pairs_balanced_and_valid():
    pairs = ts.sample_pairs(PIDS, CAMS, 20, seed=0)
    i, j, label = pairs.T
    np.testing.assert_array_equal(label, np.arange(20) % 2 == 0)
    assert np.all((PIDS[i] == PIDS[j]) == (label == 1))


def test_triplet_epochs_resume_matches():
    t = np.arange(30).reshape(10, 3)
    full = ts.triplet_epochs(t, 4, seed=1)
    batches = [next(full) for _ in range(6)]
    resumed = ts.triplet_epochs(t, 4, seed=1, start=4)
    np.testing.assert_array_equal(next(resumed), batches[4])
    # an epoch visits every triplet once
    seen = np.concatenate(batches)[:10]
    assert sorted(seen[:, 0].tolist()) == list(range(0, 30, 3))


# --- the LMDB triplet feeder ----------------------------------------------


@pytest.fixture
def tiny_lmdb(tmp_path):
    """PIDS/CAMS images, 16×8, pixel value = image index (identifiable),
    written by the project's own LMDB builder so the layers read it through
    the real reader."""
    images = []
    for i, (pid, cam) in enumerate(zip(PIDS.tolist(), CAMS.tolist())):
        rgb = np.full((16, 8, 3), i * 10, np.uint8)
        rgb[:, :4, 2] = 255  # blue (BGR channel 0), left half: shows mirroring
        Image.fromarray(rgb).save(str(tmp_path / ("%d.png" % i)))
        images.append({"path": "%d.png" % i, "pid": pid, "cam": cam, "set": "train"})
    labels = [sorted(set(PIDS.tolist())).index(p) for p in PIDS.tolist()]
    split = validate_split({"format": "reid-split/1", "dataset": "toy", "root": str(tmp_path),
                            "images": images, "trials": [{"name": "t0", "train": list(range(len(PIDS))),
                                                          "train_labels": labels}]})
    return build_lmdb(split, str(tmp_path / "train.lmdb"), 16, 8, verbose=False)


def _data_net(params, ntop, layer="TripletData"):
    from caffe import layers as L
    from common.caffe_env import net_from_spec
    n = caffe.NetSpec()
    tops = L.Python(python_param=dict(module="layers.triplet_data", layer=layer,
                                      param_str=json.dumps(params)), ntop=ntop)
    for i, t in enumerate(tops if ntop > 1 else [tops]):
        n["t%d" % i] = t
    return net_from_spec(n, caffe.TRAIN)


def test_triplet_data_layer_feeds_valid_triplets(tiny_lmdb):
    net = _data_net(dict(source=tiny_lmdb, batch=5, size=40, mirror=False), 1)
    net.forward()
    x = net.blobs["t0"].data
    assert x.shape == (15, 3, 40, 40)
    ids = np.rint(x[:, 1, 0, 0] / 10).astype(int)  # channel 1 carries the image index
    a, p, n = ids[0::3], ids[1::3], ids[2::3]
    assert np.all(PIDS[a] == PIDS[p]) and np.all(CAMS[a] != CAMS[p]) and np.all(PIDS[n] != PIDS[a])
    assert np.all(x[:, 0, :, :16] == 255)  # no mirroring, no mean subtraction


def test_triplet_data_mirror_and_mean(tiny_lmdb):
    net = _data_net(dict(source=tiny_lmdb, batch=20, size=40, mean=[1, 2, 3], seed=2), 1)
    net.forward()
    x = net.blobs["t0"].data
    flipped = x[:, 0, 0, -1] == 254   # marker now on the right, minus mean 1
    assert 0 < flipped.sum() < len(x)
    assert np.all((x[:, 0, 0, 0] == 254) | flipped)


def test_cross_domain_data_layer(tiny_lmdb):
    net = _data_net(dict(source=tiny_lmdb, aux_source=tiny_lmdb, batch=4, size=40), 3,
                    "CrossDomainData")
    net.forward()
    src = np.rint(net.blobs["t1"].data[:, 1, 0, 0] / 10).astype(int)
    label = net.blobs["t2"].data
    assert net.blobs["t0"].data.shape == (12, 3, 40, 40)
    np.testing.assert_array_equal(label, [1, 0, 1, 0])
    np.testing.assert_array_equal(PIDS[src[0::2]] == PIDS[src[1::2]], label == 1)


def test_triplet_data_bad_param(tiny_lmdb):
    with pytest.raises(Exception, match="batch"):
        _data_net(dict(source=tiny_lmdb, batch=0), 1)
