"""Choosing λ of Eq. 2 (Geng16 §5.2: "λ is set by cross-validation using
half of the training data as the validation set").

The labelled training identities are split in two halves (seeded); the
dictionary is learnt on the validation half alone, with one camera as view
A and all others as view B, for each candidate λ, and scored by the rank-1
rate of the §4.2 soft labels: the share of camera-B images whose nearest
camera-A image in Z is the same person (B images whose person has no
camera-A image are left out: they cannot be matched).
"""
from collections import namedtuple

import numpy as np
from tqdm import tqdm

from common.progress import mininterval
from unsupervised.graph_dictionary import learn
from unsupervised.soft_labels import cross_view_soft_labels

# λ is free of the features' scale (both terms of Eq. 2 grow with ||Y||²);
# half-decade steps around the default 1/(2k) = 0.1, and 0 so that the
# cross-validation can also reject the graph term.
LAMBDAS = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)

LambdaChoice = namedtuple("LambdaChoice", "lam scores")
LambdaChoice.__doc__ = "The chosen λ and the rank-1 rate (in [0, 1]) of every candidate."


def validation_half(ids, seed=0):
    """Boolean mask of the samples whose identity falls in the validation
    half of a seeded random split of the distinct identities."""
    ids = np.asarray(ids)
    people = np.unique(ids)
    chosen = np.random.RandomState(seed).permutation(people)[:len(people) // 2]
    return np.isin(ids, chosen)


def cross_view_rank1(code_a, code_b, ids_a, ids_b):
    """Share of camera-B rows whose nearest camera-A row (soft label) has
    the same identity, over B rows whose identity is present in A."""
    ids_a, ids_b = np.asarray(ids_a), np.asarray(ids_b)
    matchable = np.isin(ids_b, ids_a)
    if not matchable.any():
        raise ValueError("cross_view_rank1: no camera-B identity appears in camera A")
    labels = cross_view_soft_labels(code_a, np.asarray(code_b)[matchable])
    return float(np.mean(ids_a[labels.b] == ids_b[matchable]))


def select_lambda(features, cams, ids, candidates=LAMBDAS, camera_a=None, seed=0, progress=False,
                  **learn_args):
    """Geng16 §5.2: the candidate λ with the best validation rank-1 (the
    smallest one on ties). features: rows; cams, ids: one per row;
    camera_a: the camera taken as view A (default: the lowest camera id).
    `learn_args` go to graph_dictionary.learn (num_atoms, k, iters, …)."""
    features, cams, ids = np.asarray(features), np.asarray(cams), np.asarray(ids)
    if not (len(features) == len(cams) == len(ids)):
        raise ValueError("select_lambda: %d features, %d cameras and %d ids"
                         % (len(features), len(cams), len(ids)))
    if not candidates:
        raise ValueError("select_lambda: no candidate λ")
    keep = validation_half(ids, seed)
    camera_a = cams.min() if camera_a is None else camera_a
    in_a, in_b = keep & (cams == camera_a), keep & (cams != camera_a)
    scores = {}
    for lam in tqdm(candidates, desc="λ cross-validation", disable=not progress,
                    mininterval=mininterval()):
        result = learn(features[in_a], features[in_b], lam=lam, seed=seed, **learn_args)
        scores[lam] = cross_view_rank1(result.code_a, result.code_b, ids[in_a], ids[in_b])
    best = max(candidates, key=lambda lam: (scores[lam], -lam))
    return LambdaChoice(best, scores)
