"""CUHK01 as distributed (Li, Zhao, Wang 2012; docs/reproducing.md): ``campus/``
with 971 persons × 4 images, ``PPPPIII.png`` (person, image index); images
001–002 are camera A (cam 1), 003–004 camera B (cam 2).

Protocols (Geng16 §5.1; MTDnet, Dataset and settings), 10 seeded trials each:
- "485/486" (default): 485 persons train, 486 test, single-shot — "one
  image for each individual in each camera view is randomly selected for
  both training and testing" (drawn per trial).
- "871/100": 100 persons test, "all the rest 871 persons are used for
  training" (MTDnet), all four images of each (single_shot=False default);
  query = camera A images of the test persons, gallery = camera B images
  (the single-shot CMC draws one gallery image per person, docs/evaluation.md).
"""
import os

from tqdm import tqdm

from common.config import NUM_TRIALS, SPLIT_SEED
from data_prep.errors import DatasetError, check_files, check_unique, find_root, list_named
from data_prep.merge import make_split, make_trial, random_halves, trial_rng

NAME = r"(\d{4})(\d{3})\.png"
EXTS = {".png"}
CAM_OF_INDEX = {1: 1, 2: 1, 3: 2, 4: 2}     # images 001–002 camera A, 003–004 camera B
PROTOCOLS = {"485/486": (485, True),        # (train persons, single-shot) Geng16 §5.1
             "871/100": (871, False)}       # MTDnet, Dataset and settings


def parse(root, protocol="485/486", num_trials=NUM_TRIALS, seed=SPLIT_SEED, single_shot=None,
          verify_images=False):
    dataset = "cuhk01"
    if protocol not in PROTOCOLS:
        raise DatasetError("cuhk01: unknown protocol %r (choose from %s)" % (protocol, ", ".join(PROTOCOLS)))
    num_train, default_ss = PROTOCOLS[protocol]
    single_shot = default_ss if single_shot is None else single_shot
    root = find_root(root, ["campus"], dataset, nested=("CUHK01",))
    names = list_named(os.path.join(root, "campus"), NAME, EXTS, dataset)
    check_unique([(n.lower(), "campus/" + n) for n, _ in names], dataset, "file name")
    images, by_pid_cam = [], {}
    for name, m in tqdm(names, desc="cuhk01: campus", unit="img", leave=False,
                        disable=None):
        pid, index = int(m.group(1)), int(m.group(2))
        if index not in CAM_OF_INDEX:
            raise DatasetError("cuhk01: image index %03d of campus/%s is not 001-004" % (index, name))
        by_pid_cam.setdefault((pid, CAM_OF_INDEX[index]), []).append(len(images))
        images.append({"path": "campus/" + name, "pid": pid, "cam": CAM_OF_INDEX[index], "set": "campus"})
    ids = sorted({pid for pid, _ in by_pid_cam})
    for pid in ids:
        for cam in (1, 2):
            if (pid, cam) not in by_pid_cam:
                raise DatasetError("cuhk01: person %04d has no camera %s image in %s"
                                   % (pid, "AB"[cam - 1], os.path.join(root, "campus")))
    check_files(root, [im["path"] for im in images], dataset, verify=verify_images)
    if not 0 < num_train < len(ids):
        raise DatasetError("cuhk01: protocol %s needs more than %d persons, found %d"
                           % (protocol, num_train, len(ids)))
    trials = []
    for t in range(num_trials):
        rng = trial_rng(seed, t)
        train_ids, test_ids = random_halves(ids, num_train, rng)
        if single_shot:
            # One image per person and camera, drawn once per trial for all persons.
            pick = {k: [v[rng.integers(len(v))]] for k, v in sorted(by_pid_cam.items())}
        else:
            pick = by_pid_cam
        trials.append(make_trial(images, "trial%02d" % t,
                                 train=[i for p in train_ids for c in (1, 2) for i in pick[(p, c)]],
                                 query=[i for p in test_ids for i in pick[(p, 1)]],
                                 gallery=[i for p in test_ids for i in pick[(p, 2)]]))
    info = {"name": "cuhk01-" + protocol, "ids": len(ids), "train_ids": num_train,
            "test_ids": len(ids) - num_train, "single_shot": single_shot, "trials": num_trials}
    return make_split(dataset, root, images, trials, info, seed)
