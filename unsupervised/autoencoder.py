"""The CNN + autoencoder alternative to co-training (Geng16 §5.6, Table 9):
an autoencoder 1024 → 512 → 1024 on the base network's features, trained to
minimise Eq. 4, J(x) = ½‖φ(x) − f_d(f_e(φ(x)))‖²₂, and matched on its 512-D
code f_e(φ(x)). "Since the size of T is too small to train the AE from
scratch, we initialize the parameters of the AE layers by first pretraining
them using images in the source dataset S": train on the source features,
then train again on the target features with `weights` = that model.

Features are numpy rows (N × dim; evaluation/features.py output, any
trailing 1 × 1 axes are flattened) fed into the net's Input blob each step,
so no data layer is involved. The nets and the solver come from
networks/unsupervised.py; Caffe runs in whatever mode the caller set.
"""
import hashlib
import os

import numpy as np

from common import caffe_env, records
from common.atomic import atomic_path, write_text
import caffe
from training import surgery
from networks import geng16, unsupervised as netgen

NET = "autoencoder_train.prototxt"
SOLVER = "autoencoder_solver.prototxt"
MODEL = "autoencoder.caffemodel"


def _rows(features):
    """float32 N × dim."""
    features = np.asarray(features, np.float32)
    if features.ndim < 2 or len(features) == 0:
        raise ValueError("autoencoder: features must be N × dim with N ≥ 1, got shape %s"
                         % (features.shape,))
    return features.reshape(len(features), -1)


def minibatches(n, batch, rng):
    """Endless index arrays of `batch` rows out of n: epoch after epoch, each
    a fresh permutation, so every row is seen once per epoch."""
    pending = np.empty(0, np.int64)
    while True:
        while len(pending) < batch:
            pending = np.concatenate([pending, rng.permutation(n)])
        yield pending[:batch]
        pending = pending[batch:]


def _load(net, weights):
    """Copy the AE layers of `weights` by name, refusing a model without them."""
    surgery.load_weights(net, weights, "all")


def train_autoencoder(features, out_dir, iters, batch=netgen.BATCH, base_lr=netgen.AE_BASE_LR,
                      weights=None, seed=0, hidden=netgen.HIDDEN, activation=netgen.ACTIVATION,
                      recompute=False):
    """Train the AE on `features` for `iters` SGD steps of `batch` rows
    drawn with a numpy RNG seeded by `seed` (the solver's fillers use it
    too), starting from `weights` (a pretrained AE) if given; returns
    out_dir/autoencoder.caffemodel. The model is written atomically with a
    record of what made it: a finished one made from the same features and
    arguments is returned without training again, one made otherwise is
    refused (common.atomic.Stale) unless `recompute`."""
    model = os.path.join(out_dir, MODEL)
    features = _rows(features)
    record = {"features": hashlib.sha1(np.ascontiguousarray(features).tobytes()).hexdigest(),
              "shape": list(features.shape), "iters": iters, "batch": batch,
              "base_lr": base_lr, "weights": records.sha1(weights) if weights else None,
              "seed": seed, "hidden": hidden, "activation": activation}
    if records.reuse_file(model, record, recompute):
        return model
    net_path = os.path.abspath(os.path.join(out_dir, NET))
    write_text(net_path, geng16.net_text(
        netgen.autoencoder(features.shape[1], hidden, batch, activation), "autoencoder"))
    solver_path = os.path.join(out_dir, SOLVER)
    # absolute: Caffe reads the solver's net path relative to the working directory
    write_text(solver_path, netgen.autoencoder_solver_text(net_path, iters, base_lr, seed))
    solver = caffe.SGDSolver(solver_path)
    if weights:
        _load(solver.net, weights)
    rng = np.random.RandomState(seed)
    blob = solver.net.blobs["feature"].data
    for _, idx in zip(range(iters), minibatches(len(features), batch, rng)):
        blob[...] = features[idx]
        solver.step(1)
    with atomic_path(model) as tmp:
        solver.net.save(tmp)
    records.write_record(model, record)
    return model


def _net(features, weights, hidden, activation, spec):
    net = caffe_env.net_from_spec(spec(features.shape[1], hidden, len(features), activation))
    _load(net, weights)
    net.blobs["feature"].data[...] = features
    net.forward()
    return net


def encode(features, weights, hidden=netgen.HIDDEN, activation=netgen.ACTIVATION):
    """N × hidden codes f_e(φ(x)) of the rows of `features` (deploy net)."""
    features = _rows(features)
    return _net(features, weights, hidden, activation,
                netgen.autoencoder_deploy).blobs["encode"].data.copy()


def reconstruction_loss(features, weights, hidden=netgen.HIDDEN, activation=netgen.ACTIVATION):
    """Eq. 4 averaged over the rows of `features`: Caffe's EuclideanLoss of
    the train net over all of them at once."""
    features = _rows(features)
    return float(_net(features, weights, hidden, activation,
                      netgen.autoencoder).blobs["loss"].data)
