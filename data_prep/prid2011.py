"""PRID2011, single-shot version, as distributed (Hirzer et al. 2011;
Geng16 §5.1; the dataset's readme): ``single_shot/cam_a`` (385 people) and
``single_shot/cam_b`` (749), ``person_%04d.png``. Only persons 1–200 are
the same people in both cameras; above 200, person_0201 of cam A and
person_0201 of cam B are different people.

Person ids in the split: 1–200 as numbered; cam-A-only persons (201–385)
get 1000 + n, cam-B-only persons (201–749) get 2000 + n, so no two different
people share an id.

Protocol (Geng16 §5.1; MTDnet: "besides 100 test individuals, there are
another 549 people in the gallery"): per trial, 100 of the 200 shared
persons train (both cameras); probe = cam A of the other 100; gallery = cam B
of those 100 plus cam B persons 201–749: 649 images. 10 seeded trials.
"""
import os

from common.config import NUM_TRIALS, SPLIT_SEED
from data_prep.errors import DatasetError, camera_folder_images, check_files, find_root
from data_prep.merge import make_split, make_trial, random_halves, trial_rng

CAMS = ("cam_a", "cam_b")
NAME = r"person_(\d+)\.png"
EXTS = {".png"}
SHARED_IDS = 200        # persons 1–200 appear in both cameras (the dataset's readme)
NUM_TRAIN = 100         # training persons per trial (Geng16 §5.1)
ONLY_OFFSET = {1: 1000, 2: 2000}   # id offsets of the single-camera persons (see above)


def parse(root, num_trials=NUM_TRIALS, seed=SPLIT_SEED, num_train=NUM_TRAIN,
          shared_ids=SHARED_IDS, verify_images=False):
    dataset = "prid2011"
    root = find_root(root, CAMS, dataset, nested=("single_shot", "prid_2011/single_shot"))
    images, where = camera_folder_images(
        root, CAMS, NAME, EXTS, dataset,
        lambda n, cam: n if n <= shared_ids else ONLY_OFFSET[cam] + n)
    for n in range(1, shared_ids + 1):
        for cam, folder in enumerate(CAMS, start=1):
            if (n, cam) not in where:
                raise DatasetError("prid2011: person_%04d.png missing from %s (persons 1-%d are in both cameras)"
                                   % (n, os.path.join(root, folder), shared_ids))
    check_files(root, [im["path"] for im in images], dataset, verify=verify_images)
    if not 0 < num_train < shared_ids:
        raise DatasetError("prid2011: num_train=%d, but %d persons are shared" % (num_train, shared_ids))
    b_only = [i for (n, cam), i in where.items() if cam == 2 and n > shared_ids]
    trials = []
    for t in range(num_trials):
        train_ids, test_ids = random_halves(range(1, shared_ids + 1), num_train, trial_rng(seed, t))
        trials.append(make_trial(images, "trial%02d" % t,
                                 train=[where[(n, c)] for n in train_ids for c in (1, 2)],
                                 query=[where[(n, 1)] for n in test_ids],
                                 gallery=[where[(n, 2)] for n in test_ids] + b_only))
    protocol = {"name": "prid2011-single-shot", "shared_ids": shared_ids, "train_ids": num_train,
                "query": shared_ids - num_train, "gallery": len(trials[0]["gallery"]),
                "trials": num_trials}
    return make_split(dataset, root, images, trials, protocol, seed)
