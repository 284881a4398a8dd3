"""VIPeR as distributed (Gray et al. 2007; Geng16 §5.1; MTDnet, Dataset and
settings; docs/reproducing.md): ``cam_a/*.bmp`` and ``cam_b/*.bmp``, 632 each,
one image per person per camera; a person is paired across cameras by the
numeric prefix of the name (``000_45.bmp``: person 000, viewing angle 45).

Protocol: "The 632 identities are randomly divided into two equal halves,
one for training and the other for testing … repeated for 10 times" (Geng16
§5.1): 316/316, 10 seeded trials. Query = camera A of the test half,
gallery = camera B (cam 1 = cam_a, cam 2 = cam_b).

Person id in the split = numeric prefix + 1: names start at ``000``, and the
split format reserves ids <= 0 for Market-style junk and distractors.
"""
import os

from common.config import NUM_TRIALS, SPLIT_SEED
from data_prep.errors import DatasetError, camera_folder_images, check_files, find_root
from data_prep.merge import make_split, make_trial, random_halves, trial_rng

CAMS = ("cam_a", "cam_b")
NAME = r"(\d+)_(\d+)\.bmp"
EXTS = {".bmp"}


def parse(root, num_trials=NUM_TRIALS, seed=SPLIT_SEED, num_train=None, verify_images=False):
    """num_train: training identities per trial (default half: 316 of 632)."""
    dataset = "viper"
    root = find_root(root, CAMS, dataset, nested=("VIPeR",))
    images, where = camera_folder_images(root, CAMS, NAME, EXTS, dataset, lambda n, cam: n + 1,
                                         what="person id")
    ids = sorted({n for n, _ in where})
    for n in ids:
        for cam, folder in enumerate(CAMS, start=1):
            if (n, cam) not in where:
                raise DatasetError("viper: person %03d has no image in %s" % (n, os.path.join(root, folder)))
    check_files(root, [im["path"] for im in images], dataset, verify=verify_images)
    num_train = len(ids) // 2 if num_train is None else num_train
    if not 0 < num_train < len(ids):
        raise DatasetError("viper: num_train=%d, but there are %d identities" % (num_train, len(ids)))
    trials = []
    for t in range(num_trials):
        train_ids, test_ids = random_halves(ids, num_train, trial_rng(seed, t))
        trials.append(make_trial(images, "trial%02d" % t,
                                 train=[where[(p, c)] for p in train_ids for c in (1, 2)],
                                 query=[where[(p, 1)] for p in test_ids],
                                 gallery=[where[(p, 2)] for p in test_ids]))
    protocol = {"name": "viper-halves", "ids": len(ids), "train_ids": num_train,
                "test_ids": len(ids) - num_train, "trials": num_trials}
    return make_split(dataset, root, images, trials, protocol, seed)
