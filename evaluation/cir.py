"""CIR test of MTDnet (Chen et al. 2017, §"The multi-task network": "in the
test phase, only the classification task architecture … is used … the last
layer predicting the similarity probability of a test pair"; docs/evaluation.md),
the library of `python -m tools.mtdnet_cir`:

    score_to_file(weights, query_lmdb, gallery_lmdb, out=scores.npz, passes=8, size=227,
                  trp=False, rnk=False)

The scores file holds the matrices, q/g pids and cams, and the query and
gallery LMDBs' paths (q_lmdb, g_lmdb).

Every probe × gallery pair is scored by the classifier's same-person
probability and the gallery ranked by it. Fast path: each image's norm2 map
is computed once by the shared conv1–conv2 trunk (prototxt deploy_feat), and
only conv3 … fc8 (deploy_head) runs on the concatenated pair maps, in large
batches. `passes=8` averages both orders × horizontal flips of probe and
gallery image (the authors' test); 2 = both orders; 1 = (probe, gallery).
MTDnet-trp ranks by the Euclidean distance of the 512-D ranking feature of
the same model. Metrics come from evaluation/ (single-shot CMC).

The weights must fill every parametrised layer of each deploy net, shapes
checked before anything is copied: a file that is no model, or a model of
another net, is refused naming the file and the first layer that does not
fit (scores from random fillers would look like a result).
"""
import os

import numpy as np

from common import caffe_env
from common.atomic import atomic_path
from common.config import MTDNET_INPUT
import caffe
from layers.triplet_data import prepare
from training import surgery
from networks import mtdnet as netgen

PASSES = 8          # both orders × flips (the authors' test code)
# What ranks the gallery in an MTDnet test: the CIR scores of the
# classification head, or the distances of a 512-D ranking feature; and the
# feature scored in the same run (score_to_file's trp / rnk). One scoring
# run of a multi-task model gives both CIR and -trp.
MTDNET_TESTS = {"cir": ("scores", "trp"), "trp": ("trp_distances", "trp"),
                "rnk": ("rnk_distances", "rnk")}
TRUNK_BATCH = 64
HEAD_BATCH = 256    # pairs per head forward
CMC_RANKS = (1, 5, 10)  # Table 1
RANKING_LAYER = "feat"  # the 512-D ranking feature's layer (MTDnet-trp)


def load_net(spec, weights=None, blobs=None, require="all"):
    """A TEST net of `spec` with its parametrised layers (`require`, see
    surgery.check_required) loaded from `weights` (its `blobs` when already
    read); random fillers without."""
    net = caffe_env.net_from_spec(spec, caffe.TEST)
    if weights:
        surgery.load_blobs(net, blobs or surgery.read_blobs(weights), weights, require)
    return net


def load_nets(weights=None, size=MTDNET_INPUT, blobs=None, ranking=False):
    """(trunk, head, pair): deploy_feat, deploy_head and deploy_pair with the
    weights of a trained model loaded by layer name (random fillers without).
    The trunk's ranking layer `feat` must be in the weights when `ranking`
    (MTDnet-trp) is asked for; CIR alone (an MTDnet-cls model) does not use it."""
    if weights and blobs is None:
        blobs = surgery.read_blobs(weights)  # read once for the three
    trunk_needs = "all" if ranking else (lambda name: name != RANKING_LAYER)
    return (load_net(netgen.deploy_feat(size=size), weights, blobs, trunk_needs),
            load_net(netgen.deploy_head(size=size), weights, blobs),
            load_net(netgen.deploy_pair(size=size), weights, blobs))


def _run(net, inp, out, x, batch):
    """Forward `x` through `net` in batches; returns blob `out` rows."""
    rows = []
    for s in range(0, len(x), batch):
        chunk = x[s:s + batch]
        net.blobs[inp].reshape(*chunk.shape)
        net.blobs[inp].data[...] = chunk
        net.forward()
        rows.append(np.array(net.blobs[out].data))
    return np.concatenate(rows) if rows else np.zeros((0,), np.float32)


def image_maps(trunk, images, batch=TRUNK_BATCH):
    """norm2 maps (N × 256 × h × w) of preprocessed images (N × 3 × S × S)."""
    return _run(trunk, "data", "norm2", images, batch)


def ranking_features(trunk, images, batch=TRUNK_BATCH):
    """L2-normalised 512-D ranking features (MTDnet-trp)."""
    return _run(trunk, "data", "normfeat", images, batch)


def pair_scores(head, maps_a, maps_b, batch=HEAD_BATCH):
    """Same-person probability of every (a, b) pair: len(a) × len(b), the
    head run on channel-concatenated maps, `batch` pairs per forward."""
    from tqdm import tqdm
    na, nb = len(maps_a), len(maps_b)
    out = np.empty(na * nb, np.float32)
    for s in tqdm(range(0, na * nb, batch), desc="CIR pairs", unit="batch", leave=False,
                  disable=None):
        idx = np.arange(s, min(s + batch, na * nb))
        pairs = np.concatenate([maps_a[idx // nb], maps_b[idx % nb]], axis=1)
        head.blobs["concat"].reshape(*pairs.shape)
        head.blobs["concat"].data[...] = pairs
        head.forward()
        out[idx] = head.blobs["prob"].data[:, 1]
    return out.reshape(na, nb)


def cir_scores(trunk, head, probe, gallery, passes=PASSES, batch=HEAD_BATCH):
    """Score matrix (probes × gallery, higher = more alike) of preprocessed
    images, averaged over `passes` (1, 2 or 8)."""
    if passes not in (1, 2, 8):
        raise ValueError("cir_scores: passes must be 1, 2 or 8, got %r" % (passes,))
    flips = (False, True) if passes == 8 else (False,)
    maps_p = {f: image_maps(trunk, probe[..., ::-1] if f else probe) for f in flips}
    maps_g = {f: image_maps(trunk, gallery[..., ::-1] if f else gallery) for f in flips}
    total = np.zeros((len(probe), len(gallery)), np.float64)
    count = 0
    for fp in flips:
        for fg in flips:
            total += pair_scores(head, maps_p[fp], maps_g[fg], batch)
            count += 1
            if passes >= 2:
                total += pair_scores(head, maps_g[fg], maps_p[fp], batch).T
                count += 1
    return (total / count).astype(np.float32)


def naive_pair_scores(pair_net, probe, gallery):
    """Reference: one (probe, gallery) pair per forward of the whole pair
    deploy net (both streams recomputed each time); passes = 1."""
    out = np.empty((len(probe), len(gallery)), np.float32)
    for k in ("data_a", "data_b"):
        pair_net.blobs[k].reshape(1, *probe.shape[1:])
    for i in range(len(probe)):
        for j in range(len(gallery)):
            pair_net.blobs["data_a"].data[0] = probe[i]
            pair_net.blobs["data_b"].data[0] = gallery[j]
            pair_net.forward()
            out[i, j] = pair_net.blobs["prob"].data[0, 1]
    return out


def trp_distances(trunk, probe, gallery):
    """MTDnet-trp: Euclidean distances of the ranking features (probes × gallery).
    With the deploy_rnk_feat net as `trunk`: MTDnet-rnk's."""
    a = ranking_features(trunk, probe).astype(np.float64)
    b = ranking_features(trunk, gallery).astype(np.float64)
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a.dot(b.T)
    return np.sqrt(np.maximum(sq, 0)).astype(np.float32)


def single_shot(matrix, q_pids, q_cams, g_pids, g_cams, similarity, repeats=10, seed=0):
    """Single-shot CMC of evaluation/cmc.py."""
    from evaluation.cmc import single_shot_cmc
    return single_shot_cmc(matrix, q_pids, q_cams, g_pids, g_cams, repeats=repeats, seed=seed,
                           similarity=similarity)


def _load(lmdb_dir, size, mean):
    from data_prep.lmdb_builder import LmdbImages, read_index
    index = read_index(lmdb_dir)
    images = LmdbImages(lmdb_dir)
    try:
        data = prepare(images.get_many(np.arange(len(images))), size, None, mean)
    finally:
        images.close()
    return data, np.asarray(index["pid"]), np.asarray(index["cam"])


def score_to_file(weights, query, gallery, out=None, size=MTDNET_INPUT, passes=PASSES, mean=None,
                  trp=False, rnk=False, gpu=None):
    """Rank the `gallery` LMDB for each image of the `query` LMDB with the
    MTDnet model `weights`: CIR scores ("scores"), and with `trp` also the
    512-D feature's distances ("trp_distances"); an MTDnet-rnk model (`rnk`)
    by its feature only ("rnk_distances"). Written to `out` (.npz, whole or
    not at all) when given; returns those matrices with q_pids, q_cams,
    g_pids, g_cams."""
    caffe_env.set_mode(gpu)
    blobs = surgery.read_blobs(weights)  # a file that is no model is refused before the images load
    q, q_pids, q_cams = _load(query, size, mean)
    g, g_pids, g_cams = _load(gallery, size, mean)
    if rnk:
        # the deploy net of the model's own reading (its saved wiring; netgen.rnk_net_of)
        spec = netgen.deploy_rnk_feat(size=size, rnk_net=netgen.model_rnk_net(weights))
        net = load_net(spec, weights, blobs)
        result = {"rnk_distances": trp_distances(net, q, g)}
    else:
        trunk, head, _ = load_nets(weights, size, blobs, ranking=trp)
        result = {"scores": cir_scores(trunk, head, q, g, passes)}
        if trp:
            result["trp_distances"] = trp_distances(trunk, q, g)
    if out:
        with atomic_path(out) as tmp:
            with open(tmp, "wb") as f:
                # the LMDBs scored, so that ranked lists show their images (visrank)
                np.savez(f, q_pids=q_pids, q_cams=q_cams, g_pids=g_pids, g_cams=g_cams,
                         q_lmdb=np.array(os.path.abspath(query)),
                         g_lmdb=np.array(os.path.abspath(gallery)), **result)
    return dict(result, q_pids=q_pids, q_cams=q_cams, g_pids=g_pids, g_cams=g_cams)


NAMES = {"scores": "MTDnet", "trp_distances": "MTDnet-trp", "rnk_distances": "MTDnet-rnk"}


def summary(result, repeats=10):
    """One line per ranking of score_to_file's result: its single-shot
    CMC at Table 1's ranks ("MTDnet: r1 …%  r5 …%  r10 …%")."""
    lines = []
    for key, name in NAMES.items():
        if key in result:
            cmc = single_shot(result[key], result["q_pids"], result["q_cams"], result["g_pids"],
                              result["g_cams"], key == "scores", repeats)
            lines.append("%s: %s" % (name, "  ".join("r%d %.2f%%" % (r, 100 * cmc[r - 1])
                                                     for r in CMC_RANKS if r <= len(cmc))))
    return lines
