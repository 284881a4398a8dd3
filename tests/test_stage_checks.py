"""What a stage's data cannot satisfy is refused when the stage starts,
before any of its training, naming the setting and the data
(experiments/kinds/ `check`)."""
import json

import pytest

from data_prep.lmdb_builder import build_lmdb
from experiments import kinds
from experiments.plan import Builder
from tests.test_lmdb import make_split
from unsupervised import study


def _geng16(tmp_path, **net):
    b = Builder(str(tmp_path))
    train = b.stage("lmdb", b.stage("split", "synthetic", name="x"), "train", (8, 4))
    return b.stage("geng16", "g", train, None, (0, 1), two_step=False, base="dgdnet", **net)


def test_geng16_refuses_k_beyond_the_identities_and_an_input_beyond_the_images(tmp_path):
    split = make_split(tmp_path / "data")          # 2 training identities, 8 x 4 images
    lmdb = build_lmdb(split, str(tmp_path / "train.lmdb"), 8, 4, verbose=False)
    check = kinds.get("geng16").check
    with pytest.raises(ValueError, match=r"^k=3 identities per batch, but the training LMDB "
                                         r".*train.lmdb holds 2 identities \(stage geng16/g-"):
        check(_geng16(tmp_path, k=3), {"train": lmdb})
    with pytest.raises(ValueError, match=r"^the net's 144 x 56 input is larger than the 8 x 4 "
                                         r"images of the training LMDB"):
        check(_geng16(tmp_path, k=2), {"train": lmdb})
    check(_geng16(tmp_path, k=2, size=[8, 4]), {"train": lmdb})


def test_the_unsupervised_study_refuses_k_beyond_its_splits(tmp_path):
    split = make_split(tmp_path / "data")
    path = str(tmp_path / "split.json")
    with open(path, "w") as f:
        json.dump(split, f)
    # the source's training half: 2 identities; the target's camera-A training images: 2
    with pytest.raises(ValueError, match=r"^k=32 identities per batch, but there are 2 "
                                         r"identities in the training half of the source split"):
        study.check_setup(study.Setup(), path, path, "unsupervised/u")
    study.check_setup(study.Setup(k=2), path, path, "unsupervised/u")
