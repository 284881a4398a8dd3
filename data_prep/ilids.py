"""i-LIDS (VID pedestrian set, Zheng, Gong, Xiang 2009; MTDnet, Dataset and
settings; docs/reproducing.md) as distributed: ``i-LIDS_Pedestrian/Persons/*.jpg``,
476 images of 119 persons, ``PPPPIII.jpg`` (4-digit person, 3-digit index).

The dataset has NO camera labels. This parser defines pseudo-cameras so that
query and gallery images of a person are always different images: each
person's images are sorted by index; the first half (rounded up) is camera 1,
the rest camera 2 (every person has at least two images). Evaluations that
require query and gallery from different cameras then compare different
pictures of a person, as the published protocol intends.

Protocol (MTDnet: "randomly divide the individuals into two equal parts"),
10 seeded trials: half the persons train (all their images; 59 of 119, the
odd one goes to test), the others test with one query (drawn from camera 1)
and one gallery image (drawn from camera 2) per person, drawn per trial.
"""
import os

from tqdm import tqdm

from common.config import NUM_TRIALS, SPLIT_SEED
from data_prep.errors import DatasetError, check_files, check_unique, find_root, list_named
from data_prep.merge import make_split, make_trial, random_halves, trial_rng

NAME = r"(\d{4})(\d{3})\.jpg"
EXTS = {".jpg", ".jpeg"}


def parse(root, num_trials=NUM_TRIALS, seed=SPLIT_SEED, num_train=None, verify_images=False):
    """num_train: training persons per trial (default half, rounded down)."""
    dataset = "ilids"
    root = find_root(root, ["Persons"], dataset, nested=("i-LIDS_Pedestrian",))
    names = list_named(os.path.join(root, "Persons"), NAME, EXTS, dataset)
    check_unique([((int(m.group(1)), int(m.group(2))), "Persons/" + n) for n, m in names],
                 dataset, "(person, index)")
    by_pid = {}
    for name, m in names:
        by_pid.setdefault(int(m.group(1)), []).append((int(m.group(2)), name))
    images, by_pid_cam = [], {}
    for pid in tqdm(sorted(by_pid), desc="ilids: Persons", unit="id", leave=False,
                    disable=None):
        shots = sorted(by_pid[pid])
        if len(shots) < 2:
            raise DatasetError("ilids: person %04d has only one image (%s); query and gallery need two"
                               % (pid, os.path.join(root, "Persons", shots[0][1])))
        first = (len(shots) + 1) // 2
        for k, (_, name) in enumerate(shots):
            cam = 1 if k < first else 2
            by_pid_cam.setdefault((pid, cam), []).append(len(images))
            images.append({"path": "Persons/" + name, "pid": pid, "cam": cam, "set": "Persons"})
    check_files(root, [im["path"] for im in images], dataset, verify=verify_images)
    ids = sorted(by_pid)
    num_train = len(ids) // 2 if num_train is None else num_train
    if not 0 < num_train < len(ids):
        raise DatasetError("ilids: num_train=%d, but there are %d persons" % (num_train, len(ids)))
    trials = []
    for t in range(num_trials):
        rng = trial_rng(seed, t)
        train_ids, test_ids = random_halves(ids, num_train, rng)
        draw = {p: [by_pid_cam[(p, c)][rng.integers(len(by_pid_cam[(p, c)]))] for c in (1, 2)]
                for p in test_ids}
        trials.append(make_trial(images, "trial%02d" % t,
                                 train=[i for p in train_ids for c in (1, 2) for i in by_pid_cam[(p, c)]],
                                 query=[draw[p][0] for p in test_ids],
                                 gallery=[draw[p][1] for p in test_ids]))
    protocol = {"name": "ilids-halves", "ids": len(ids), "train_ids": num_train,
                "test_ids": len(ids) - num_train, "cameras": "pseudo: first half of each person's images = 1",
                "trials": num_trials}
    return make_split(dataset, root, images, trials, protocol, seed)
