"""Soft-label self-training (Geng16 §4.2 "Self-training"): the unlabelled
target set gets labels from the model itself — every camera-A image is its
own class, every camera-B image takes the class of its nearest camera-A
neighbour — and the model is fine-tuned on them two-stepped (§4.1), round
after round.

The target's identities are never read: only images and camera ids. The
labels travel as a canonical split (data_prep/split_format.py) whose trial
lists the target's training images with the soft labels as train_labels,
so the LMDB, the data layer and the fine-tuning are the supervised ones.
Camera A is the lowest camera id; on a set with more than two cameras
(Market's layout) every other camera is B.
"""
import copy
import hashlib
import os

import numpy as np

from data_prep.split_format import load_split, save_split
from steps import stages as ex
from evaluation.features import load_features
from unsupervised.soft_labels import cross_view_soft_labels

ROUNDS = 2    # the paper iterates without a count; drift grows with rounds (§4.2)


def target_features(ctx, weights, split_path, base, size=None, resize=None):
    """(features, cams, image indices) of the target's training images under
    `weights` (the base's output, as for matching). The pids are dropped.
    Kept once per weights, so every model that starts from the same weights
    (self-training's and co-training's first rounds, the AE) shares one
    extraction."""
    split_name = os.path.splitext(os.path.basename(split_path))[0]
    # in the study's own folder, named after the weights' place in it (or,
    # for weights from elsewhere, their path's digest)
    rel = os.path.relpath(os.path.abspath(weights), os.path.abspath(ctx.run_dir))
    stem = os.path.splitext(rel)[0].replace(os.sep, "_") if not rel.startswith("..") else \
        "weights-" + hashlib.sha1(os.path.abspath(weights).encode()).hexdigest()[:12]
    path = ctx.path("target_features", "%s.%s.train.features.npz" % (stem, split_name))
    ex.extract(ctx, path, weights, split_path, base, ["train"], size=size, resize=resize)
    subsets, _ = load_features(path)
    train = subsets["train"]
    return train["features"], train["cams"], train["index"]


def camera_views(cams):
    """Boolean mask of the camera-A rows: the lowest camera id."""
    cams = np.asarray(cams)
    return cams == cams.min()


def soft_labels(feat, cams):
    """Training labels of all rows: A rows their own class 0…nA−1 (in row
    order), B rows the class of their nearest A row by ||φ(a) − φ(b)||."""
    is_a = camera_views(cams)
    labels = np.empty(len(feat), np.int64)
    pair = cross_view_soft_labels(feat[is_a], feat[~is_a])
    labels[is_a], labels[~is_a] = pair.a, pair.b
    return labels


def soft_label_split(split_path, index, labels, out, trial=0):
    """A copy of the split whose trial `trial` trains on images `index` with
    `labels`; written atomically to `out`, returned."""
    split = copy.deepcopy(load_split(split_path))
    t = split["trials"][trial]
    t["train"] = [int(i) for i in index]
    t["train_labels"] = [int(l) for l in labels]
    split["soft_labels"] = {"from": os.path.abspath(split_path), "classes": int(labels.max()) + 1}
    os.makedirs(os.path.dirname(out), exist_ok=True)
    save_split(split, out)
    return out


def fine_tune_on(ctx, name, weights, split_path, index, labels, base, iters, size=None,
                 lmdb_size=None, solver_kw=None, k=None):
    """Two-stepped fine-tuning of `weights` on the soft-labelled split;
    returns the new weights."""
    labelled = soft_label_split(split_path, index, labels, ctx.path(name + ".labels.json"))
    train = ex.lmdb(ctx, labelled, "train", lmdb_size or ex.GENG16_LMDB[base])
    kw = dict(base=base, size=size) if size else dict(base=base)
    if k:
        kw["k"] = k
    return ex.geng16(ctx, name, train, weights, iters, two_step=True, solver_kw=solver_kw, **kw)


def self_train(ctx, name, weights, split_path, base, iters, rounds=ROUNDS, size=None,
               lmdb_size=None, solver_kw=None, k=None):
    """`rounds` rounds of self-training from `weights`; returns
    (final weights, [labels of each round])."""
    history = []
    for r in range(rounds):
        step = "%s/round%d" % (name, r + 1)
        feat, cams, index = target_features(ctx, weights, split_path, base, size, lmdb_size)
        labels = soft_labels(feat, cams)
        history.append(labels)
        weights = fine_tune_on(ctx, step, weights, split_path, index, labels, base, iters, size,
                               lmdb_size, solver_kw, k)
    return weights, history
