"""The synthetic dataset (data_prep/synthetic.py): deterministic from its
seed, Market-1501's layout and naming (read by the real Market parser), junk
and distractors present, and identities that survive a change of camera
without looking the same in every camera."""
import filecmp
import json
import os
import re
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from common.atomic import MARKER, NotOurs
from data_prep import market1501, synthetic

# Market's file naming in full: PPPP_cCsS_FFFFFF_BB.jpg (docs/reproducing.md)
NAME = re.compile(r"(-1|\d{4})_c([1-6])s(\d)_(\d{6})_(\d{2})\.jpg")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return synthetic.generate(str(tmp_path_factory.mktemp("syn") / "tree"), num_ids=40, seed=0, quiet=True)


def names(root, folder):
    return sorted(os.listdir(os.path.join(root, folder)))


def test_layout_and_naming(tree):
    assert sorted(os.listdir(tree)) == sorted(synthetic.FOLDERS + (synthetic.PARAMS_FILE, MARKER))
    for folder in synthetic.FOLDERS:
        for name in names(tree, folder):
            assert NAME.fullmatch(name), name
    first = os.path.join(tree, "query", names(tree, "query")[0])
    assert Image.open(first).size == (64, 128)             # width × height, as Market's
    with open(os.path.join(tree, synthetic.PARAMS_FILE)) as f:
        params = json.load(f)["params"]
    assert params["num_ids"] == 40 and params["seed"] == 0


def test_market_parser_reads_it(tree):
    split = market1501.parse(tree)
    images, trial = split["images"], split["trials"][0]
    train_ids = {images[i]["pid"] for i in trial["train"]}
    query = [images[i] for i in trial["query"]]
    gallery = [images[i] for i in trial["gallery"]]
    assert len(train_ids) == 20 and len({q["pid"] for q in query}) == 20
    assert not train_ids & {q["pid"] for q in query}
    # query: one image per test identity per camera
    assert max(Counter((q["pid"], q["cam"]) for q in query).values()) == 1
    # gallery: junk and distractors, and every query has a match in another camera
    gpids = Counter(g["pid"] for g in gallery)
    assert gpids[-1] >= 1 and gpids[0] >= 1
    for q in query:
        assert any(g["pid"] == q["pid"] and g["cam"] != q["cam"] for g in gallery)
    # gt_bbox: several boxes per query identity and camera, the query's own among them
    for q in map(str, trial["query"]):
        assert len(trial["multi_query"][q]) >= 2
    assert set(names(tree, "query")) <= set(names(tree, "gt_bbox"))


def test_deterministic_from_seed(tree, tmp_path):
    again = synthetic.generate(str(tmp_path / "again"), num_ids=40, seed=0, quiet=True)
    other = synthetic.generate(str(tmp_path / "other"), num_ids=40, seed=1, quiet=True)
    for folder in synthetic.FOLDERS:
        assert names(again, folder) == names(tree, folder)
        _, mismatch, errors = filecmp.cmpfiles(tree + "/" + folder, again + "/" + folder,
                                               names(tree, folder), shallow=False)
        assert not mismatch and not errors
    assert names(other, "query") != names(tree, "query")


def test_reuse_and_refusals(tree, tmp_path):
    marker = os.path.join(tree, synthetic.PARAMS_FILE)
    before = os.stat(marker).st_mtime_ns
    assert synthetic.generate(tree, num_ids=40, seed=0) == tree
    assert os.stat(marker).st_mtime_ns == before             # same parameters: reused
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(NotOurs, match="refusing to replace %s: an existing folder" % foreign):
        synthetic.generate(str(foreign), num_ids=40)
    assert os.listdir(foreign) == ["notes.txt"] and (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="num_ids must be in"):
        synthetic.generate(str(tmp_path / "x"), num_ids=2)


def test_regenerating_keeps_a_users_files(tmp_path):
    """A tree of ours is replaced when generated with other parameters, but
    not once a user has put a file of their own in it (that file used to
    be deleted with the tree)."""
    root = synthetic.generate(str(tmp_path / "tree"), num_ids=4, seed=0, quiet=True)
    again = synthetic.generate(root, num_ids=4, seed=1, quiet=True)   # ours: replaced
    with open(os.path.join(again, synthetic.PARAMS_FILE)) as f:
        assert json.load(f)["params"]["seed"] == 1
    mine = os.path.join(root, "query", "my_notes.txt")
    with open(mine, "w") as f:
        f.write("keep me")
    before = sorted(os.listdir(os.path.join(root, "query")))
    with pytest.raises(NotOurs, match="it holds %s, which this package did not make" % mine):
        synthetic.generate(root, num_ids=4, seed=2, quiet=True)
    assert open(mine).read() == "keep me" and sorted(os.listdir(os.path.join(root, "query"))) == before
    assert synthetic.generate(root, num_ids=4, seed=1, quiet=True) == root   # same: still reused


def band_colours(path):
    """Mean colour of four horizontal bands of the image's central columns
    (where the person is)."""
    img = np.asarray(Image.open(path), np.float64)[16:120, 20:44]
    return img.reshape(4, 26, 24, 3).mean(axis=(1, 2)).ravel()


def test_same_person_varies_across_cameras_but_stays_closer(tree):
    by_key = {}
    for name in names(tree, "bounding_box_train"):
        m = NAME.fullmatch(name)
        by_key.setdefault((int(m.group(1)), int(m.group(2))), []).append(
            band_colours(os.path.join(tree, "bounding_box_train", name)))
    keys = sorted(by_key)
    feats = np.stack([np.mean(by_key[k], axis=0) for k in keys])
    pid = np.array([k[0] for k in keys])
    cam = np.array([k[1] for k in keys])
    dist = np.linalg.norm(feats[:, None] - feats[None], axis=2)
    other_cam = cam[:, None] != cam[None]
    same = pid[:, None] == pid[None]
    same_person, different = dist[other_cam & same], dist[other_cam & ~same]
    assert same_person.min() > 5                    # never the same picture in two cameras
    assert same_person.mean() < different.mean()
    # identifiable, not trivially: nearest other-camera neighbour is often, not always, right
    nearest = np.where(other_cam, dist, np.inf).argmin(axis=1)
    rank1 = np.mean(pid[nearest] == pid)
    assert 3.0 / 20 < rank1 < 0.95, rank1
