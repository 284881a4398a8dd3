"""Co-training of the deep model and the graph-regularised subspace model
(Geng16 §4.2 "Co-training", Eqs. 2–3): the deep model's features of the
unlabelled target set give the input Y and the cross-view k-NN graph; the
subspace model (unsupervised/graph_dictionary.py) gives the codes Z
whose cross-view nearest neighbours are the soft labels; the deep model is
fine-tuned two-stepped on them (unsupervised/self_training.py) and
gives new features and a new graph. "This iterative process normally
converges after 2-3 iterations": at most ROUNDS rounds, and it stops when a
round's labels equal the previous round's.

λ is chosen once by cross-validation on the labelled source set (§5.2,
unsupervised/lambda_cv.py); the target's identities are never read.
"""
import numpy as np

from unsupervised import graph_dictionary as gd
from unsupervised.lambda_cv import select_lambda
from unsupervised.self_training import (camera_views, fine_tune_on, soft_labels,
                                              target_features)

ROUNDS = 3   # §4.2: "normally converges after 2-3 iterations"


def num_atoms(dim, samples):
    """Dictionary size: a quarter of the feature dimension (256 for
    GoogLeNet's 1,024; graph_dictionary.NUM_ATOMS explains why), and no
    more than half the samples on a small set."""
    return max(1, min(gd.NUM_ATOMS, dim // 4, samples // 2))


def subspace_codes(feat, cams, lam, k=gd.K_NEIGHBOURS, seed=0):
    """Z (rows in `feat` order) of the subspace model learnt on `feat`,
    camera A the lowest camera id, every other camera B."""
    feat = np.asarray(feat, np.float64)
    is_a = camera_views(cams)
    samples, dim = feat.shape
    result = gd.learn(feat[is_a], feat[~is_a], num_atoms(dim, samples), lam, k, seed=seed)
    codes = np.empty((len(feat), result.Z.shape[1]))
    codes[is_a], codes[~is_a] = result.code_a, result.code_b
    return codes


def subspace_labels(feat, cams, lam, k=gd.K_NEIGHBOURS, seed=0):
    """Soft labels from cross-view nearest neighbours in Z (§4.2): the
    self-training rule applied to the codes instead of the features."""
    return soft_labels(subspace_codes(feat, cams, lam, k, seed), cams)


def choose_lambda(source_features, source_cams, source_ids, seed=0):
    """§5.2: λ by cross-validation on half of the labelled source set."""
    samples, dim = np.asarray(source_features).shape
    # the validation half learns the dictionary: about half the samples
    return select_lambda(source_features, source_cams, source_ids, seed=seed,
                         num_atoms=num_atoms(dim, samples // 2))


def co_train(ctx, name, weights, split_path, base, iters, lam, rounds=ROUNDS, size=None,
             lmdb_size=None, solver_kw=None, k=None):
    """Co-training from the source model `weights`; returns (final weights,
    [labels of each round]). Stops early when the labels stop changing."""
    history = []
    for r in range(rounds):
        step = "%s/round%d" % (name, r + 1)
        feat, cams, index = target_features(ctx, weights, split_path, base, size, lmdb_size)
        labels = subspace_labels(feat, cams, lam)
        if history and np.array_equal(labels, history[-1]):
            break
        history.append(labels)
        weights = fine_tune_on(ctx, step, weights, split_path, index, labels, base, iters, size,
                               lmdb_size, solver_kw, k)
    return weights, history
