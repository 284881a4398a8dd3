"""Geng16 §4.2 soft labels for self- and co-training: camera A
images are their own classes, camera B images take their nearest A image's
class, from deep features or from the subspace model's codes; the labels
travel as a canonical split that the LMDB builder reads unchanged."""
import json

import numpy as np

from unsupervised import cotraining, self_training


def test_soft_labels_by_hand():
    # camera 1 (A) rows 0 and 2; cameras 2 and 3 (B) rows 1, 3, 4
    feat = np.array([[0, 0], [0.9, 0], [1, 0], [0.1, 0.1], [5, 5]], np.float32)
    cams = np.array([1, 2, 1, 3, 2])
    labels = self_training.soft_labels(feat, cams)
    # A rows: classes 0, 1 in row order; B rows: nearest A (row 2 = class 1, row 0 = class 0)
    np.testing.assert_array_equal(labels, [0, 1, 1, 0, 1])


def test_soft_label_split_feeds_the_lmdb(tmp_path):
    from data_prep import market1501, synthetic
    from data_prep.lmdb_builder import build_lmdb
    from data_prep.split_format import load_split, save_split
    split = market1501.parse(synthetic.generate(str(tmp_path / "syn"), num_ids=8, seed=3, quiet=True))
    save_split(split, str(tmp_path / "split.json"))
    index = np.array(split["trials"][0]["train"][:6])
    labels = np.array([0, 1, 2, 0, 2, 1])
    out = self_training.soft_label_split(str(tmp_path / "split.json"), index, labels,
                                         str(tmp_path / "soft" / "labels.json"))
    soft = load_split(out)
    assert soft["trials"][0]["train"] == index.tolist()
    assert soft["soft_labels"]["classes"] == 3
    build_lmdb(soft, str(tmp_path / "soft.lmdb"), 16, 8, verbose=False)
    with open(tmp_path / "soft.lmdb" / "index.json") as f:
        assert json.load(f)["label"] == labels.tolist()


def test_subspace_labels_find_cross_view_matches():
    # 30 people, one image per camera: shared identity signal + view shift + noise
    rng = np.random.RandomState(0)
    people = rng.randn(30, 64)
    shift = rng.randn(64) * 0.5
    feat = np.vstack([people + 0.3 * rng.randn(30, 64), people + shift + 0.3 * rng.randn(30, 64)])
    cams = np.repeat([1, 2], 30)
    labels = cotraining.subspace_labels(feat, cams, lam=0.1)
    np.testing.assert_array_equal(labels[:30], np.arange(30))
    assert np.mean(labels[30:] == np.arange(30)) > 0.8  # chance is 1/30
