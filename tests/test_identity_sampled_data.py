"""Geng16's identity-sampled minibatch (layers/identity_sampled_data.py): the
sampling functions by hand, then the layer inside real pycaffe nets reading
an LMDB built by data_prep.lmdb_builder."""
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from common import caffe_env
from common.config import MEAN_BGR, ROOT
import caffe
from caffe import layers as L
from data_prep.lmdb_builder import build_lmdb, read_index
from data_prep.split_format import validate_split
from layers import identity_sampled_data as isd

# --- sampling functions ---------------------------------------------------


def test_identity_batches_are_distinct_and_epoch_balanced():
    ids = np.arange(100, 110)          # 10 identities, k = 4: batches straddle epochs
    stream = isd.identity_batches(ids, 4, seed=3)
    batches = [next(stream) for _ in range(60)]
    counts = np.zeros(10, int)
    for b in batches:
        assert len(set(b.tolist())) == 4 and set(b.tolist()) <= set(ids.tolist())
        counts[b - 100] += 1
        assert counts.max() - counts.min() <= 1   # nobody comes back before everyone was seen
    first_epoch = np.random.RandomState([3, 0]).permutation(10) + 100
    np.testing.assert_array_equal(np.concatenate(batches[:2]), first_epoch[:8])
    resumed = isd.identity_batches(ids, 4, seed=3, start=37)
    for t in range(37, 40):
        np.testing.assert_array_equal(next(resumed), batches[t])
    with pytest.raises(ValueError, match="k=11 identities per batch but this shard has only 10"):
        next(isd.identity_batches(ids, 11, seed=0))


def test_shards_are_disjoint_and_cover():
    labels = np.array([4, 0, 0, 1, 2, 2, 3, -1, 5, 6, 6, 6])
    shards = [isd.shard_identities(labels, r, 3) for r in range(3)]
    np.testing.assert_array_equal(shards[0], [0, 3, 6])
    np.testing.assert_array_equal(shards[1], [1, 4])
    np.testing.assert_array_equal(shards[2], [2, 5])
    with pytest.raises(ValueError, match="rank 3 is not in"):
        isd.shard_identities(labels, 3, 3)


def test_choose_images():
    labels = np.array([0, 1, 0, 1, 0, 2, 1])
    groups = isd.group_by_label(labels, [0, 1, 2])
    np.testing.assert_array_equal(groups[0], [0, 2, 4])
    rng = np.random.RandomState(0)
    for _ in range(20):
        idx = isd.choose_images(groups, [2, 0, 1], 3, rng)
        np.testing.assert_array_equal(labels[idx], [2, 2, 2, 0, 0, 0, 1, 1, 1])
        np.testing.assert_array_equal(idx[:3], [5, 5, 5])             # one image: with replacement
        assert len(set(idx[3:6])) == 3 and len(set(idx[6:9])) == 3    # enough: distinct


def test_crop_mirror_mean_by_hand():
    img = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
    out = isd.crop_mirror(img, oy=np.array([1, 0]), ox=np.array([2, 0]), flip=np.array([False, True]), crop=3)
    np.testing.assert_array_equal(out[0, 0], [[7, 8, 9], [12, 13, 14], [17, 18, 19]])
    np.testing.assert_array_equal(out[1, 2], [[102, 101, 100], [107, 106, 105], [112, 111, 110]])
    f = isd.subtract_mean(out, (104.0, 117.0, 123.0))
    assert f.dtype == np.float32
    assert f[0, 0, 0, 0] == 7 - 104 and f[1, 2, 0, 0] == 102 - 123 and f[0, 1, 0, 0] == 27 - 117
    rng = np.random.RandomState(0)
    oy, ox, flip = isd.crop_params(500, 10, 7, 5, rng, train=False, mirror=True)
    assert set(oy) == {2} and set(ox) == {1} and not flip.any()      # TEST: centre, no mirror
    oy, ox, flip = isd.crop_params(500, 10, 7, 5, rng, train=True, mirror=True)
    assert set(oy) == set(range(6)) and set(ox) == set(range(3)) and 150 < flip.sum() < 350
    assert not isd.crop_params(50, 10, 7, 5, rng, train=True, mirror=False)[2].any()


def test_rectangular_crop_for_dgdnet_inputs():
    """DGDNet takes 144×56 inputs: "crop" may be [height, width]."""
    img = np.arange(1 * 1 * 4 * 5, dtype=np.uint8).reshape(1, 1, 4, 5)
    out = isd.crop_mirror(img, oy=np.array([1]), ox=np.array([1]), flip=np.array([True]), crop=[2, 3])
    np.testing.assert_array_equal(out[0, 0], [[8, 7, 6], [13, 12, 11]])
    oy, ox, _ = isd.crop_params(200, 10, 7, [4, 7], np.random.RandomState(0), train=True, mirror=True)
    assert set(oy) == set(range(7)) and set(ox) == {0}
    oy, ox, _ = isd.crop_params(3, 10, 7, [4, 3], np.random.RandomState(0), train=False, mirror=True)
    assert set(oy) == {3} and set(ox) == {2}


def test_prefetcher_stops_and_reports_errors():
    p = isd.Prefetcher(iter(range(1000)), depth=2)
    assert [p.get() for _ in range(3)] == [0, 1, 2]
    p.stop()
    assert not p.thread.is_alive()

    def broken():
        yield 1
        raise OSError("disk gone")
    p = isd.Prefetcher(broken(), depth=2)
    assert p.get() == 1
    with pytest.raises(RuntimeError, match="prefetch thread failed: disk gone"):
        p.get()
    p.stop()


# --- the layer in a net ---------------------------------------------------

SIZE = 10
PIDS = [11, 11, 11, 12, 12, 13, 13, 13, 14, 15, 15, 16, 16, 17, 17]   # 14: one image


@pytest.fixture(scope="module")
def lmdb_dir(tmp_path_factory):
    """Image i: a random texture whose blue channel is i everywhere
    (so the batch row's source is readable back)."""
    root = tmp_path_factory.mktemp("isd")
    images = []
    for i, pid in enumerate(PIDS):
        rgb = np.random.RandomState(i).randint(0, 256, (SIZE, SIZE, 3)).astype(np.uint8)
        rgb[:, :, 2] = i
        rel = "%d.png" % i
        Image.fromarray(rgb).save(str(root / rel))
        images.append({"path": rel, "pid": pid, "cam": 1 + i % 2, "set": "train"})
    labels = [sorted(set(PIDS)).index(p) for p in PIDS]
    split = validate_split({"format": "reid-split/1", "dataset": "t", "root": str(root), "images": images,
                            "trials": [{"name": "t0", "train": list(range(len(PIDS))),
                                        "train_labels": labels}]})
    return build_lmdb(split, str(root / "train.lmdb"), SIZE, SIZE, verbose=False)


def make_net(source, phase=caffe.TRAIN, **params):
    n = caffe.NetSpec()
    n.data, n.label = L.Python(ntop=2, python_param=dict(
        module="layers.identity_sampled_data", layer="IdentitySampledData",
        param_str=json.dumps(dict(source=source, **params))))
    return caffe_env.net_from_spec(n, phase)


def raw_images(source):
    from data_prep.lmdb_builder import LmdbImages
    with LmdbImages(source) as images:
        return images.get_many(range(len(images)))


def test_batches_hold_k_identities_m_images(lmdb_dir):
    net = make_net(lmdb_dir, k=4, m=2, crop=8, seed=5)
    layer = net.layers[0]
    labels_of = np.asarray(read_index(lmdb_dir)["label"])
    raw = raw_images(lmdb_dir)
    mean = np.asarray(MEAN_BGR, np.float32).reshape(3, 1, 1)
    seen = set()
    for _ in range(6):
        net.forward()
        data, label = net.blobs["data"].data, net.blobs["label"].data
        assert data.shape == (8, 3, 8, 8)
        idx = layer.last_indices
        np.testing.assert_array_equal(label, labels_of[idx])
        per_id = label.reshape(4, 2)
        assert len(set(per_id[:, 0])) == 4 and np.all(per_id[:, 0] == per_id[:, 1])
        for r, i in enumerate(idx):
            img = data[r] + mean
            assert np.all(img[0] == i)                           # blue channel: the source index
            # the row is a (possibly mirrored) 8×8 window of its source image
            windows = [raw[i, :, y:y + 8, x:x + 8] for y in range(3) for x in range(3)]
            assert any(np.array_equal(img, w) or np.array_equal(img, w[:, :, ::-1]) for w in windows)
            if labels_of[i] != 3:                                # identity 14 has one image
                assert idx[r - r % 2] != idx[r - r % 2 + 1]
        seen |= set(label.tolist())
    assert seen == set(range(7))   # 7 identities, k=4, 6 batches: all visited
    layer.close()


def test_test_phase_centre_crop_and_resume(lmdb_dir):
    net = make_net(lmdb_dir, phase=caffe.TEST, k=3, m=2, crop=6, seed=1)
    raw = raw_images(lmdb_dir)
    mean = np.asarray(MEAN_BGR, np.float32).reshape(1, 3, 1, 1)
    batches = []
    for _ in range(4):
        net.forward()
        idx = net.layers[0].last_indices
        expected = raw[idx][:, :, 2:8, 2:8].astype(np.float32) - mean
        np.testing.assert_array_equal(net.blobs["data"].data, expected)
        batches.append(net.blobs["data"].data.copy())
    net.layers[0].resume_at(2)
    net.forward()
    np.testing.assert_array_equal(net.blobs["data"].data, batches[2])
    net.layers[0].close()


def test_sharded_layers_draw_disjoint_identities(lmdb_dir):
    drawn = []
    for rank in range(2):
        net = make_net(lmdb_dir, k=3, m=1, crop=8, rank=rank, count=2)
        labels = set()
        for _ in range(5):
            net.forward()
            labels |= set(net.blobs["label"].data.tolist())
        drawn.append(labels)
        net.layers[0].close()
    assert drawn[0] == {0, 2, 4, 6} and drawn[1] == {1, 3, 5}


def _prefetchers():
    return [t for t in threading.enumerate() if t.name == "IdentitySampledData-prefetch"]


def test_thread_stops_on_close(lmdb_dir):
    before = len(_prefetchers())
    net = make_net(lmdb_dir, k=2, m=2, crop=8)
    net.forward()
    assert len(_prefetchers()) == before + 1
    net.layers[0].close()
    assert len(_prefetchers()) == before


def test_process_exits_with_a_live_layer(lmdb_dir):
    """pycaffe never frees a Python layer (the C++ layer and its Python
    object hold each other), so the thread is a daemon and an atexit
    finaliser stops it: a script that just ends must exit promptly."""
    script = ("import json, caffe\n"
              "from tests.test_identity_sampled_data import make_net\n"
              "net = make_net(%r, k=2, m=2, crop=8, prefetch=1)\n"
              "net.forward()\n"
              "print('done')\n" % lmdb_dir)
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "done", r.stderr


def test_bad_params(lmdb_dir, tmp_path):
    with pytest.raises(Exception, match="crop 11 is larger than the LMDB's 10x10 images"):
        make_net(lmdb_dir, k=2, crop=11)
    with pytest.raises(Exception, match="holds 7 labelled identities for rank 0 of 1, fewer than k=8"):
        make_net(lmdb_dir, k=8, crop=8)
    with pytest.raises(Exception, match="unknown param_str key"):
        make_net(lmdb_dir, K=2)
    with pytest.raises(Exception, match="LMDB directory not found"):
        make_net(str(tmp_path / "none.lmdb"))
    assert os.path.isdir(lmdb_dir)


def test_a_batch_beyond_a_caffe_blob_is_refused(lmdb_dir):
    """k·m crops beyond INT_MAX values: Caffe's Blob::Reshape CHECK used to
    abort the process; the layer refuses first, naming the keys. Run in a
    fresh process so that an abort fails this test only. A large m alone
    is fine: an identity's images are then drawn with replacement."""
    script = ("from tests.test_identity_sampled_data import make_net\n"
              "try:\n"
              "    make_net(%r, k=2, m=100000000, crop=8)\n"
              "except Exception as err:\n"
              "    print(err)\n" % lmdb_dir)
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == (
        "IdentitySampledData: param_str 'k' = 2, 'm' = 100000000, 'crop' = 8 make top 'data' "
        "200000000x3x8x8 = 38400000000 values, more than a Caffe blob holds (INT_MAX = 2147483647)")
    net = make_net(lmdb_dir, k=2, m=50, crop=8)     # more than any identity has: with replacement
    net.forward()
    assert net.blobs["data"].data.shape == (100, 3, 8, 8)
    net.layers[0].close()
