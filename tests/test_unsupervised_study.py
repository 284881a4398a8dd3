"""Geng16 §4.2 / Table 9 end to end on tiny synthetic sets: the
source model, self-training, the subspace model, the autoencoder, gradient
reversal and co-training all run through real Caffe training and land in
one report beside the paper's Table 9; the soft labels have one class per
camera-A image (the target's identities are not used)."""
import json
import os

import numpy as np
import pytest

from common import caffe_env
from data_prep.split_format import load_split
from steps import stages as ex
from unsupervised import study

SIZE, LMDB = (72, 28), (80, 32)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    caffe_env.set_mode(None)
    tmp = tmp_path_factory.mktemp("study")
    ctx = ex.Context(str(tmp), progress=False)
    source = ex.split(ctx, "synthetic", root=str(tmp / "src"), name="source", num_ids=16, seed=5)
    target = ex.split(ctx, "synthetic", root=str(tmp / "tgt"), name="target", num_ids=12, seed=6)
    weights = ex.geng16(ctx, "source_model", ex.lmdb(ctx, source, "train", LMDB), None, (0, 3),
                        two_step=False, base="dgdnet", k=2, size=SIZE)
    setup = study.Setup(base="dgdnet", iters=(1, 2), protocol="market", size=SIZE, lmdb_size=LMDB,
                        k=2, ae_iters=(30, 10), rounds={"self_training": 2, "co_training": 2})
    paths, labels = study.run(ctx, weights, source, target, setup)
    return ctx, target, paths, labels


def test_every_table9_row_is_reported_beside_the_paper(run):
    ctx, _, paths, _ = run
    with open(paths["results.json"]) as f:
        doc = json.load(f)
    names = [r["name"] for r in doc["results"]]
    assert [n.split(",")[0] for n in names] == [study.NAMES[r] for r in study.ROWS]
    papers = {r["name"].split(",")[0]: r.get("paper") for r in doc["results"]}
    assert papers[study.NAMES["co_training"]]["row"] == "Ours"
    assert papers[study.NAMES["source"]] is None
    assert all(0 <= r["cmc"][0] <= 1 for r in doc["results"])
    assert "lambda" in doc["meta"] and os.path.isfile(paths["cmc.png"])


def test_soft_labels_have_one_class_per_camera_a_image(run):
    ctx, target, _, labels = run
    split = load_split(target)
    train = split["trials"][0]["train"]
    cams = np.array([split["images"][i]["cam"] for i in train])
    num_a = int((cams == cams.min()).sum())
    for row in ("self_training", "co_training"):
        assert 1 <= len(labels[row]) <= 2
        soft = load_split(ctx.path(row, "round1.labels.json"))
        assert soft["soft_labels"]["classes"] == num_a
        got = np.array(soft["trials"][0]["train_labels"])
        order = np.array(soft["trials"][0]["train"])
        soft_cams = np.array([split["images"][i]["cam"] for i in order])
        np.testing.assert_array_equal(got[soft_cams == cams.min()], np.arange(num_a))
        assert got.max() < num_a
        np.testing.assert_array_equal(got, labels[row][0])
        # the LMDB trained on holds this row's labels (not another row's round)
        lmdbs = [d for d in os.listdir(ctx.path("data")) if d.startswith(row + "_round1.labels")]
        assert len(lmdbs) == 1
        with open(os.path.join(ctx.path("data"), lmdbs[0], "index.json")) as f:
            assert json.load(f)["label"] == got.tolist()
