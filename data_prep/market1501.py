"""Market-1501 as distributed (Zheng et al. 2015; Geng16 §5.1;
docs/reproducing.md): ``bounding_box_train`` (751 ids), ``bounding_box_test``
(gallery, with junk id -1 and distractors 0000, kept: the official evaluation
needs them), ``query`` (750 ids) and ``gt_bbox`` (hand-drawn boxes, the
multi-query pools).

File names ``PPPP_cCsS_FFFFFF_BB.jpg``; person and camera by the official
regex ``([-\\d]+)_c(\\d)``, then checked: the person is -1 (junk) or a
number, the camera one of Market's 6. One trial: the fixed split the dataset
ships.

Multi-query (docs/evaluation.md): for each query, the pool is the query itself
plus every ``gt_bbox`` image of the same person and camera (name prefix
``PPPP_cC``) other than the query's own file; evaluation/ pools their
features.
"""
import os
import re

from tqdm import tqdm

from data_prep.errors import DatasetError, check_files, check_unique, find_root, list_named
from data_prep.merge import make_split, make_trial

TOP_FOLDER = "Market-1501-v15.09.15"   # the archive's own top folder
TRAIN, TEST, QUERY, GT = "bounding_box_train", "bounding_box_test", "query", "gt_bbox"
# Official regex ([-\d]+)_c(\d), anchored to the whole name for validation.
NAME = r"([-\d]+)_c(\d)(.*)\.jpg"
EXTS = {".jpg", ".jpeg"}
PID = re.compile(r"-1|\d+")   # what the regex's [-\d]+ may hold in a real name
CAMERAS = 6


def _read_folder(root, folder, dataset):
    images = []
    names = list_named(os.path.join(root, folder), NAME, EXTS, dataset)
    for name, m in tqdm(names, desc="%s: %s" % (dataset, folder), unit="img", leave=False,
                        disable=None):
        path = os.path.join(root, folder, name)
        if not PID.fullmatch(m.group(1)):
            raise DatasetError("%s: file name %s: person id %r is neither -1 (junk) nor a number"
                               % (dataset, path, m.group(1)))
        if not 1 <= int(m.group(2)) <= CAMERAS:
            raise DatasetError("%s: file name %s: camera c%s is not one of Market's c1-c%d"
                               % (dataset, path, m.group(2), CAMERAS))
        images.append({"path": "%s/%s" % (folder, name), "pid": int(m.group(1)),
                       "cam": int(m.group(2)), "set": folder})
    # The same image twice under different case (.jpg / .JPG) would be counted twice.
    check_unique([(("%s/%s" % (folder, n)).lower(), "%s/%s" % (folder, n)) for n, _ in names],
                 dataset, "file name")
    return images


def multi_query_pools(images, query_idx, gt_idx):
    """query index -> [query index] + gt_bbox indices of the same (pid, cam)."""
    by_key = {}
    for i in gt_idx:
        by_key.setdefault((images[i]["pid"], images[i]["cam"]), []).append(i)
    pools = {}
    for q in query_idx:
        own = os.path.basename(images[q]["path"])
        pool = [i for i in by_key.get((images[q]["pid"], images[q]["cam"]), [])
                if os.path.basename(images[i]["path"]) != own]
        pools[q] = [q] + pool
    return pools


def parse(root, multi_query=True, verify_images=False, dataset="market1501"):
    """The canonical split of a Market-1501 tree (or one in its layout, e.g.
    data_prep/synthetic.py's). `multi_query` needs ``gt_bbox``."""
    required = [TRAIN, TEST, QUERY] + ([GT] if multi_query else [])
    root = find_root(root, required, dataset, nested=(TOP_FOLDER,))
    images = []
    ranges = {}
    for folder in required:
        start = len(images)
        images += _read_folder(root, folder, dataset)
        ranges[folder] = range(start, len(images))
    check_files(root, [im["path"] for im in images], dataset, verify=verify_images)
    pools = multi_query_pools(images, ranges[QUERY], ranges[GT]) if multi_query else None
    # Real Market has no junk/distractor in training; a tree that had would
    # otherwise teach "junk" as an identity.
    train = [i for i in ranges[TRAIN] if images[i]["pid"] > 0]
    trial = make_trial(images, "trial00", train=train, query=ranges[QUERY],
                       gallery=ranges[TEST], multi_query=pools)
    protocol = {"name": "market1501", "train_ids": len(set(trial["train_labels"])),
                "query": len(trial["query"]), "gallery": len(trial["gallery"]),
                "multi_query": bool(multi_query)}
    return make_split(dataset, root, images, [trial], protocol, seed=0)
