"""Market-1501-sized official evaluation (evaluation/market.py) against
a straightforward per-query numpy implementation of the same rule (the
widely copied Python port of the official MATLAB code: sort the row, drop
junk with isin, find the good images, loop over them), on random features of
the real sizes: 3,368 queries, 19,732 gallery images, 1,024-D, with junk
(−1), distractors (0000) and same-camera images. Wall time and peak memory
(tracemalloc) beyond the shared distance matrix; the numbers (CMC, every
AP, mAP) must be identical. Target: 10× faster.

This reference is a speed baseline, not the tests' oracle: it shares the
closed-form AP with the code under test. tests/market_oracle.py holds the
literal per-rank port of compute_AP.m that tests/test_metrics.py checks
against (too slow for these sizes).
"""
import time
import tracemalloc

import numpy as np

from bench.timing import Result, best_time
from evaluation.distance import euclidean
from evaluation.market import evaluate_market

NUM_QUERY, NUM_GALLERY, DIM = 3368, 19732, 1024     # Market-1501 test set (docs/reproducing.md)
NUM_IDS, NUM_CAMS = 750, 6
NUM_JUNK, NUM_DISTRACTORS = 3819, 2793              # bounding_box_test's −1 and 0000 boxes
SIGNAL = 0.37  # identity-centre scale against unit noise: mAP about 0.45, like a trained model


def reference_ap(index, good_index, junk_index, ap_rule="trapezoid"):
    """One query, as the per-query port does it. Returns (ap, cmc 0/1 array)."""
    cmc = np.zeros(len(index), np.int64)
    if good_index.size == 0:
        return 0.0, cmc
    index = index[np.isin(index, junk_index, invert=True)]
    ngood = len(good_index)
    rows_good = np.flatnonzero(np.isin(index, good_index))
    cmc[rows_good[0]:] = 1
    if ap_rule == "step":
        return float(np.mean((np.arange(ngood) + 1.0) / (rows_good + 1))), cmc
    ap = 0.0
    for i in range(ngood):
        d_recall = 1.0 / ngood
        precision = (i + 1) * 1.0 / (rows_good[i] + 1)
        old_precision = i * 1.0 / rows_good[i] if rows_good[i] != 0 else 1.0
        ap = ap + d_recall * (old_precision + precision) / 2
    return ap, cmc


def reference_evaluate(dist, q_pids, q_cams, g_pids, g_cams, ap_rule="trapezoid"):
    """(cmc, mAP, per-query AP) by the per-query loop; ties by gallery order
    (stable sort, as MATLAB's sort)."""
    cmc = np.zeros(dist.shape[1])
    aps = np.zeros(len(q_pids))
    for i in range(len(q_pids)):
        index = np.argsort(dist[i], kind="stable")
        query_index = np.flatnonzero(g_pids == q_pids[i])
        camera_index = np.flatnonzero(g_cams == q_cams[i])
        good_index = np.setdiff1d(query_index, camera_index, assume_unique=True)
        junk_index = np.append(np.flatnonzero(g_pids == -1), np.intersect1d(query_index, camera_index))
        aps[i], c = reference_ap(index, good_index, junk_index, ap_rule)
        cmc += c
    return cmc / len(q_pids), float(np.mean(aps)), aps


def market_like(seed=0, num_query=NUM_QUERY, num_gallery=NUM_GALLERY, dim=DIM):
    """Random features with Market's id/camera structure: each query id has
    gallery images in several cameras (some in the query's own: junk), plus
    −1 junk and 0000 distractors."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, NUM_IDS + 1)
    q_pids = rng.choice(ids, num_query)
    q_cams = rng.integers(1, NUM_CAMS + 1, num_query)
    n_real = num_gallery - NUM_JUNK - NUM_DISTRACTORS
    g_pids = np.concatenate([rng.choice(ids, n_real), np.full(NUM_JUNK, -1), np.zeros(NUM_DISTRACTORS, int)])
    g_cams = rng.integers(1, NUM_CAMS + 1, num_gallery)
    perm = rng.permutation(num_gallery)
    g_pids, g_cams = g_pids[perm], g_cams[perm]
    # Features: an identity centre plus noise, so good images tend to rank high.
    centres = SIGNAL * rng.standard_normal((NUM_IDS + 2, dim)).astype(np.float32)
    q = centres[q_pids] + rng.standard_normal((num_query, dim)).astype(np.float32)
    g = centres[np.where(g_pids > 0, g_pids, NUM_IDS + 1)] + rng.standard_normal(
        (num_gallery, dim)).astype(np.float32)
    return q, g, q_pids, q_cams, g_pids, g_cams


def peak_memory(fn):
    """Peak traced bytes (tracemalloc: numpy reports its buffers) of one
    call; timed separately, as tracing slows allocation."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run():
    q, g, q_pids, q_cams, g_pids, g_cams = market_like()
    start = time.perf_counter()
    dist = euclidean(q, g)
    t_dist = time.perf_counter() - start
    ours = evaluate_market(dist, q_pids, q_cams, g_pids, g_cams)
    t_ours = best_time(lambda: evaluate_market(dist, q_pids, q_cams, g_pids, g_cams), repeat=2)
    start = time.perf_counter()
    cmc, mAP, aps = reference_evaluate(dist, q_pids, q_cams, g_pids, g_cams)
    t_ref = time.perf_counter() - start
    if not (np.array_equal(ours["cmc"], cmc) and ours["mAP"] == mAP and np.array_equal(ours["ap"], aps)):
        raise AssertionError("market evaluation differs from the per-query reference: mAP %r vs %r, "
                             "max CMC difference %g" % (ours["mAP"], mAP, np.abs(ours["cmc"] - cmc).max()))
    # The reference's peak is per query, so a slice of the queries shows it.
    m_ours = peak_memory(lambda: evaluate_market(dist, q_pids, q_cams, g_pids, g_cams))
    m_ref = peak_memory(lambda: reference_evaluate(dist[:200], q_pids[:200], q_cams[:200], g_pids, g_cams))
    print("  identical numbers (CMC, every AP, mAP): mAP %.4f, R1 %.4f; distances (blocked) %.2f s,"
          " matrix %.0f MB" % (mAP, cmc[0], t_dist, dist.nbytes / 2**20))
    return [
        Result("Market eval 3368x19732 wall (s)", t_ours, t_ref, "s", "per-query ref",
               target="ratio <= 0.1"),
        Result("Market eval peak extra memory (MB)", m_ours / 2**20, m_ref / 2**20, "MB", "per-query ref"),
    ]
