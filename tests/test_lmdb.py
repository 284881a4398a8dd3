"""The reid-lmdb/1 builder and reader: contents read back
through Caffe's own C++ Data layer, the side index, atomic builds, errors,
Geng16's offline augmentation (data_prep/augment.py), and the
record of what made an LMDB, refusal of a user's folder, and a truncated
or inconsistent database refused when opened."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from common import caffe_env
from common.atomic import NotOurs, read_marker
from common.config import ROOT
import caffe
from caffe import layers as L, params as P
from data_prep import augment
from data_prep.images import ImageError, resize_bgr
from data_prep.lmdb_builder import LmdbError, LmdbImages, build_lmdb, read_index, split_sha1
from data_prep.split_format import save_split, validate_split

H, W = 8, 4
# (pid, cam) of each image; pids 3 and 8 are training identities
IMAGES = [(3, 1), (3, 2), (8, 1), (8, 2), (8, 2), (5, 1), (5, 2), (-1, 1)]
TRAIN, TRAIN_LABELS = [0, 1, 2, 3, 4], [0, 0, 1, 1, 1]
QUERY, GALLERY = [5], [6, 7]


def rgb(i, h=H, w=W):
    return np.random.RandomState(i).randint(0, 256, (h, w, 3)).astype(np.uint8)


def make_split(root, size=(H, W)):
    images = []
    for i, (pid, cam) in enumerate(IMAGES):
        rel = "imgs/%d_%d_%d.png" % (i, pid, cam)
        os.makedirs(os.path.join(root, "imgs"), exist_ok=True)
        Image.fromarray(rgb(i, *size)).save(os.path.join(root, rel))
        images.append({"path": rel, "pid": pid, "cam": cam, "set": "test"})
    split = {"format": "reid-split/1", "dataset": "tiny", "root": str(root), "images": images,
             "trials": [{"name": "trial00", "train": TRAIN, "train_labels": TRAIN_LABELS, "val": [],
                         "query": QUERY, "gallery": GALLERY}], "seed": 0}
    return validate_split(split)


def bgr_chw(i, h=H, w=W):
    return rgb(i, h, w)[:, :, ::-1].transpose(2, 0, 1)


@pytest.fixture
def split(tmp_path):
    return make_split(tmp_path / "data")


def test_caffe_data_layer_reads_it(split, tmp_path):
    out = build_lmdb(split, str(tmp_path / "train.lmdb"), H, W, verbose=False)
    n = caffe.NetSpec()
    n.data, n.label = L.Data(source=out, backend=P.Data.LMDB, batch_size=len(TRAIN), ntop=2)
    net = caffe_env.net_from_spec(n, caffe.TEST)
    net.forward()
    expected = np.stack([bgr_chw(i) for i in TRAIN]).astype(np.float32)
    np.testing.assert_array_equal(net.blobs["data"].data, expected)
    np.testing.assert_array_equal(net.blobs["label"].data, TRAIN_LABELS)


def test_index_and_reader(split, tmp_path):
    out = build_lmdb(split, str(tmp_path / "gallery.lmdb"), H, W, subset="gallery", verbose=False)
    index = read_index(out)
    assert index["format"] == "reid-lmdb/1" and index["count"] == 2
    assert (index["height"], index["width"], index["subset"], index["trial"]) == (H, W, "gallery", 0)
    assert index["label"] == [-1, -1] and index["pid"] == [5, -1] and index["cam"] == [2, 1]
    assert index["source"] == [split["images"][i]["path"] for i in GALLERY]
    with LmdbImages(out) as images:
        assert len(images) == 2
        np.testing.assert_array_equal(images.get(1), bgr_chw(7))
        np.testing.assert_array_equal(images.get_many([1, 0, 1]), np.stack([bgr_chw(7), bgr_chw(6), bgr_chw(7)]))
        with pytest.raises(IndexError, match="out of range"):
            images.get(2)


def test_resize_and_all_subset(tmp_path):
    split = make_split(tmp_path / "data", size=(16, 8))
    out = build_lmdb(split, str(tmp_path / "all.lmdb"), H, W, subset="all", verbose=False)
    index = read_index(out)
    assert index["label"] == TRAIN_LABELS + [-1, -1, -1]
    with LmdbImages(out) as images:
        got = images.get(2)
    # the shared resize of data_prep.images (what feature extraction uses too)
    expected = resize_bgr(np.ascontiguousarray(bgr_chw(2, 16, 8).transpose(1, 2, 0)), H, W)
    np.testing.assert_array_equal(got, expected.transpose(2, 0, 1))


def test_unreadable_image_leaves_nothing(split, tmp_path):
    bad = os.path.join(split["root"], split["images"][2]["path"])
    with open(bad, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "lmdbs" / "train.lmdb"
    with pytest.raises(ImageError, match="unreadable image .*2_8_1.png"):
        build_lmdb(split, str(out), H, W, verbose=False)
    assert os.listdir(tmp_path / "lmdbs") == []  # neither the LMDB nor its temporary sibling
    # an existing LMDB survives a failed rebuild untouched
    good = make_split(tmp_path / "good")
    build_lmdb(good, str(out), H, W, verbose=False)
    with pytest.raises(ImageError):
        build_lmdb(split, str(out), H, W, verbose=False)
    assert sorted(os.listdir(tmp_path / "lmdbs")) == ["train.lmdb"]
    assert read_index(str(out))["count"] == len(TRAIN)


def test_errors(split, tmp_path):
    out = str(tmp_path / "x.lmdb")
    with pytest.raises(LmdbError, match=r"label 1 of imgs/2_8_1.png is beyond the net's 1 identities"):
        build_lmdb(split, out, H, W, num_classes=1, verbose=False)
    with pytest.raises(LmdbError, match="augment .* train subset only"):
        build_lmdb(split, out, H, W, subset="query", augment=5, verbose=False)
    with pytest.raises(LmdbError, match="trial 3 does not exist"):
        build_lmdb(split, out, H, W, trial=3, verbose=False)
    with pytest.raises(LmdbError, match="subset must be one of"):
        build_lmdb(split, out, H, W, subset="test", verbose=False)
    assert not os.path.exists(out)
    with pytest.raises(LmdbError, match="LMDB directory not found"):
        read_index(out)
    os.makedirs(out)
    with pytest.raises(LmdbError, match="no index.json"):
        read_index(out)
    with open(os.path.join(out, "index.json"), "w") as f:
        f.write('{"format": "reid-lmdb/1", "count": 2, "height": 8, "width": 4, '
                '"label": [0], "pid": [1, 1], "cam": [1, 1], "source": ["a", "b"]}')
    with pytest.raises(LmdbError, match="'label' must be a list of count=2 entries"):
        read_index(out)


def test_augmented_copies_follow_their_source(split, tmp_path):
    big = make_split(tmp_path / "big", size=(32, 16))
    out = build_lmdb(big, str(tmp_path / "aug.lmdb"), 32, 16, augment=2, seed=1, verbose=False)
    again = build_lmdb(big, str(tmp_path / "aug2.lmdb"), 32, 16, augment=2, seed=1, verbose=False)
    index = read_index(out)
    assert index["count"] == 3 * len(TRAIN) and index["augment"] == 2
    assert index["label"] == [lab for lab in TRAIN_LABELS for _ in range(3)]
    assert index["source"][:3] == [big["images"][0]["path"]] * 3
    with LmdbImages(out) as a, LmdbImages(again) as b:
        all_a, all_b = a.get_many(range(len(a))), b.get_many(range(len(b)))
    np.testing.assert_array_equal(all_a, all_b)  # seeded
    np.testing.assert_array_equal(all_a[0], bgr_chw(0, 32, 16))  # the original comes first
    assert not np.array_equal(all_a[1], all_a[0]) and not np.array_equal(all_a[1], all_a[2])


def test_augment_transform_by_hand():
    img = rgb(0, 6, 5)
    shift = np.eye(3)
    shift[1, 2] = 1.0  # one column to the right
    out = augment.apply_transform(img, shift)
    np.testing.assert_array_equal(out[:, 1:], img[:, :-1])
    np.testing.assert_array_equal(out[:, 0], img[:, 0])  # border repeated
    # zero ranges give the identity; the drawn maps fix the centre up to the translation
    m = augment.random_transforms(3, 6, 5, np.random.RandomState(0), rotation_deg=0, scale=(1, 1),
                                  shear=0, translation=0)
    np.testing.assert_allclose(m, np.broadcast_to(np.eye(3), (3, 3, 3)), atol=1e-12)
    m = augment.random_transforms(50, 100, 50, np.random.RandomState(0), translation=0)
    centre = np.array([49.5, 24.5, 1.0])
    np.testing.assert_allclose(m @ centre, np.broadcast_to(centre, (50, 3)), atol=1e-9)
    m = augment.random_transforms(200, 100, 50, np.random.RandomState(0))
    moved = m @ centre - centre
    assert np.abs(moved[:, 0]).max() <= 0.05 * 100 and np.abs(moved[:, 1]).max() <= 0.05 * 50
    assert np.abs(moved[:, 0]).max() > 0.04 * 100  # the range is used, not just bounded
    assert len(augment.augment_copies(img, augment.COPIES, np.random.RandomState(0))) == 5


def test_marker_records_what_made_it(split, tmp_path):
    path = str(tmp_path / "s.json")
    save_split(split, path)
    out = build_lmdb(split, str(tmp_path / "train.lmdb"), H, W, seed=3, split_path=path, verbose=False)
    marker = read_marker(out)
    with open(path, "rb") as f:
        sha1 = hashlib.sha1(f.read()).hexdigest()
    assert marker["kind"] == "reid-lmdb" and marker["record"] == {
        "format": "reid-lmdb/1", "split_sha1": sha1, "trial": 0, "subset": "train", "size": [H, W],
        "augment": 0, "seed": 3}
    assert split_sha1(split) == sha1  # a split in memory: the bytes save_split writes
    # a folder of the user's is refused before any image is read, and kept
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "sub" / "keep.bin").write_bytes(b"\x00\x01keep")
    with pytest.raises(NotOurs, match="refusing to replace %s" % mine):
        build_lmdb(split, str(mine), H, W, verbose=False)
    assert os.listdir(mine) == ["sub"] and (mine / "sub" / "keep.bin").read_bytes() == b"\x00\x01keep"


def read_last(lmdb_dir):
    """Read the last image in a fresh process: a read past the end of a
    truncated data.mdb kills the process with SIGBUS, so a test in-process
    would take pytest down with it."""
    script = ("from data_prep.lmdb_builder import LmdbImages\n"
              "with LmdbImages(%r) as im:\n"
              "    im.get(len(im) - 1)\n"
              "print('read')\n" % lmdb_dir)
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_truncated_data_mdb_is_refused_not_a_sigbus(tmp_path):
    big = make_split(tmp_path / "big", size=(64, 32))
    out = build_lmdb(big, str(tmp_path / "train.lmdb"), 64, 32, verbose=False)
    data = os.path.join(out, "data.mdb")
    assert read_last(out).stdout.strip() == "read"
    size = os.path.getsize(data)
    with open(data, "r+b") as f:
        f.truncate(size - 4096)                      # the last page gone
    r = read_last(out)
    assert r.returncode == 1 and "the file is truncated" in r.stderr, (r.returncode, r.stderr)
    with pytest.raises(LmdbError, match=r"%s: %d bytes, but the database's pages need %d: the file "
                                        r"is truncated" % (data, size - 4096, size)):
        LmdbImages(out)
    with open(data, "r+b") as f:
        f.truncate(100)                              # not even the meta pages
    with pytest.raises(LmdbError, match="not a readable LMDB: %s" % out):
        LmdbImages(out)


def test_entries_must_match_the_index(split, tmp_path):
    out = build_lmdb(split, str(tmp_path / "train.lmdb"), H, W, verbose=False)
    index = read_index(out)
    index["count"] -= 1
    for field in ("label", "pid", "cam", "source"):
        index[field] = index[field][:-1]
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f)
    with pytest.raises(LmdbError, match="%s: the database holds 5 entries, index.json says count=4" % out):
        LmdbImages(out)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_is_named_with_its_free_space(tmp_path):
    split = make_split(tmp_path / "data", size=(256, 256))
    disk = tmp_path / "small"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)]).returncode:
        pytest.skip("no tmpfs can be mounted here")
    try:
        out = disk / "train.lmdb"
        with pytest.raises(OSError) as err:
            build_lmdb(split, str(out), 256, 256, verbose=False)
        assert str(err.value).startswith("%s: the disk is full (" % out), str(err.value)
        assert "free, about" in str(err.value)
        assert os.listdir(disk) == []   # whole or not at all
    finally:
        subprocess.run(["umount", str(disk)], check=True)
