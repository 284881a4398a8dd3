"""Building canonical splits, and merging several into one training set.

Building (used by every parser): contiguous training labels per trial, and
the split document itself (data_prep/split_format.py).

Merging: Geng16 pre-trains on CUHK03 + Market-1501 together
(§4, "fine-tuned on the large Re-ID datasets (e.g., CUHK03+Market1501)") and
MTDnet-aug "simply adds the source data into the target dataset" (MTDnet,
Results for the cross-domain architecture). Both are an identity offset
(the dgd_person_reid idea): the k-th split's training labels are shifted by
the number of training identities before it, and its person ids by the
largest person id before it, so identities never collide.

Paths stay resolvable: the merged split's root is the deepest folder common
to every source image, and each image path is made relative to it (the
format's "relative to root" holds, and nothing needs a per-image root).
Each merged image also carries "dataset" (its source split's dataset name).
"""
import os

import numpy as np

from data_prep.errors import DatasetError
from data_prep.split_format import FORMAT, TRIAL_LISTS, validate_split


def contiguous_labels(pids):
    """Training labels 0..N-1 for a list of person ids, numbered in sorted
    person-id order (so the labelling does not depend on image order)."""
    order = {pid: i for i, pid in enumerate(sorted(set(pids)))}
    return [order[p] for p in pids]


def make_trial(images, name, train, query=(), gallery=(), val=(), multi_query=None):
    """One trial: index lists (sorted) plus contiguous labels for train."""
    train = sorted(train)
    trial = {"name": name,
             "train": train,
             "train_labels": contiguous_labels([images[i]["pid"] for i in train]),
             "val": sorted(val), "query": sorted(query), "gallery": sorted(gallery)}
    if multi_query is not None:
        trial["multi_query"] = {str(k): list(v) for k, v in sorted(multi_query.items())}
    return trial


def trial_rng(seed, trial):
    """The random generator of one trial: trial t of seed s is the same on
    every run and machine, and independent of the other trials."""
    return np.random.default_rng([seed, trial])


def random_halves(ids, num_train, rng):
    """(train ids, test ids), both sorted: `num_train` drawn without
    replacement from `ids`, the rest for test."""
    ids = sorted(ids)
    perm = rng.permutation(len(ids))
    train = sorted(ids[i] for i in perm[:num_train])
    test = sorted(ids[i] for i in perm[num_train:])
    return train, test


def make_split(dataset, root, images, trials, protocol, seed):
    """The canonical split document, validated."""
    split = {"format": FORMAT, "dataset": dataset, "root": os.path.abspath(root),
             "images": images, "trials": trials, "protocol": protocol, "seed": seed}
    return validate_split(split, where="%s split" % dataset)


def _pid_span(split):
    """One more than the largest person id (junk/distractor ids ≤ 0 ignored)."""
    return max([im["pid"] for im in split["images"] if im["pid"] > 0] + [0]) + 1


def merge_splits(splits, trials=None, eval_from=None):
    """Merge loaded splits into one.

    splits     list of split dicts (validated).
    trials     per split, the trial whose training images are used
               (default: trial 0 of each).
    eval_from  index of the split whose val/query/gallery/multi_query the
               merged trials keep (the MTDnet-aug target dataset); the merged
               split then has one trial per trial of that split, the others
               contributing their fixed training trial to each. None (Geng16's
               CUHK03 + Market stage, training only): one trial, no test lists.
    """
    if len(splits) < 2:
        raise DatasetError("merge: needs at least two splits, got %d" % len(splits))
    for k, s in enumerate(splits):
        validate_split(s, where="merge: splits[%d]" % k)
    trials = [0] * len(splits) if trials is None else list(trials)
    if len(trials) != len(splits):
        raise DatasetError("merge: %d trial indices for %d splits" % (len(trials), len(splits)))
    for k, (s, t) in enumerate(zip(splits, trials)):
        if not 0 <= t < len(s["trials"]):
            raise DatasetError("merge: splits[%d] (%s) has no trial %d" % (k, s["dataset"], t))
    if eval_from is not None and not 0 <= eval_from < len(splits):
        raise DatasetError("merge: eval_from=%r is not a split index" % eval_from)

    abs_paths = [[os.path.abspath(os.path.join(s["root"], im["path"])) for im in s["images"]]
                 for s in splits]
    root = os.path.commonpath([os.path.dirname(p) for paths in abs_paths for p in paths])
    images, img_off, pid_off, label_off = [], [], [], []
    next_pid, next_label = 0, 0
    for s, t, paths in zip(splits, trials, abs_paths):
        img_off.append(len(images))
        pid_off.append(next_pid)
        label_off.append(next_label)
        for im, p in zip(s["images"], paths):
            images.append(dict(im, path=os.path.relpath(p, root),
                               pid=im["pid"] + next_pid if im["pid"] > 0 else im["pid"],
                               dataset=im.get("dataset", s["dataset"])))
        next_pid += _pid_span(s)
        labels = s["trials"][t]["train_labels"]
        next_label += max(labels) + 1 if labels else 0

    def train_part(k, t):
        tr = splits[k]["trials"][t]
        return ([i + img_off[k] for i in tr["train"]],
                [lab + label_off[k] for lab in tr["train_labels"]])

    eval_trials = [None] if eval_from is None else range(len(splits[eval_from]["trials"]))
    merged_trials = []
    for et in eval_trials:
        train, labels = [], []
        for k in range(len(splits)):
            idx, lab = train_part(k, trials[k] if k != eval_from else et)
            train += idx
            labels += lab
        trial = {"name": "merged%02d" % len(merged_trials), "train": train, "train_labels": labels}
        for key in TRIAL_LISTS[1:]:
            trial[key] = [] if et is None else [i + img_off[eval_from]
                                                for i in splits[eval_from]["trials"][et].get(key, [])]
        if et is not None and "multi_query" in splits[eval_from]["trials"][et]:
            off = img_off[eval_from]
            trial["multi_query"] = {str(int(q) + off): [i + off for i in pool] for q, pool
                                    in splits[eval_from]["trials"][et]["multi_query"].items()}
        merged_trials.append(trial)

    protocol = {"name": "merge", "sources": [
        {"dataset": s["dataset"], "root": s["root"], "trial": (None if k == eval_from else trials[k]),
         "image_offset": img_off[k], "pid_offset": pid_off[k], "label_offset": label_off[k]}
        for k, s in enumerate(splits)], "eval_from": eval_from}
    return make_split("+".join(s["dataset"] for s in splits), root, images, merged_trials,
                      protocol, seed=splits[0].get("seed", 0))
