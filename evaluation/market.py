"""Market-1501's official evaluation (Zheng et al. 2015, the dataset's own
MATLAB code; Geng16 §5.1, Table 2; docs/evaluation.md).

For each query:
- *good* = gallery images of the same person from another camera;
- *junk* = gallery images of id −1, and of the same person from the same
  camera: removed from the ranking. Distractors (id 0) are ordinary negatives.

On the junk-free ranking, the j-th good image at 0-based position ``pos``
adds ``(1/ngood) · (p_before + j/(pos+1)) / 2`` to the AP (trapezoid, the
official rule; ``p_before = (j−1)/pos``, 1 when pos = 0), or
``(1/ngood) · j/(pos+1)`` (step-wise, ``ap="step"``). CMC(r) = share of the
queries whose first good image is within the top r+1. Both average over all
queries; a query with no good image counts 0 in both.

Ties in distance are broken by gallery order, as the official code's stable
MATLAB ``sort`` does.

Speed: the official code sorts every gallery row. Only the positions of the
good images matter, and position = number of non-junk images ranked before
it, so here each good image's position is a count of the distances below its own, junk
masked as NaN: two vectorised passes over the row per good image instead of
a sort of it (bench/bench_market_eval.py).
"""
import numpy as np

from evaluation.distance import as_distance, check_inputs

AP_RULES = ("trapezoid", "step")
JUNK_ID = -1        # Market-1501's junk boxes
BLOCK = 64          # query rows per block (a few MB of masks)


def marks(q_pids, q_cams, g_pids, g_cams):
    """(junk, good): boolean queries × gallery matrices of Market's rule:
    junk = id −1 or the query's person from the query's camera (removed from
    the ranking); good = the query's person from another camera. The one
    statement of the rule, for the evaluation and its ranked lists
    (evaluation/visrank.py)."""
    q_pids, q_cams = np.asarray(q_pids).reshape(-1, 1), np.asarray(q_cams).reshape(-1, 1)
    g_pids, g_cams = np.asarray(g_pids).reshape(1, -1), np.asarray(g_cams).reshape(1, -1)
    same_id, same_cam = g_pids == q_pids, g_cams == q_cams
    return (g_pids == JUNK_ID) | (same_id & same_cam), same_id & ~same_cam


def good_positions(row, good):
    """0-based positions of the good images in the junk-free ranking of one
    query (ascending), ties broken by gallery order.

    `row`: distances to the gallery with every junk image set to NaN (NaN
    compares false, so junk is never ranked before anything); `good`: the
    good images' column indices, ascending.
    """
    if len(good) == 0:
        return np.zeros(0, np.int64)
    t = row[good]
    order = np.lexsort((good, t))
    good, t = good[order], t[order]
    pos = np.empty(len(good), np.int64)
    for k in range(len(good)):
        less = np.count_nonzero(row < t[k])
        if np.count_nonzero(row == t[k]) > 1:  # a tie: earlier gallery images go first
            less += np.count_nonzero(row[:good[k]] == t[k])
        pos[k] = less
    return pos


def average_precision(pos, ap="trapezoid"):
    """AP of one query from the sorted 0-based positions of its good images
    in the junk-free ranking (0 when it has none)."""
    if ap not in AP_RULES:
        raise ValueError("average_precision: ap must be one of %s, got %r" % (AP_RULES, ap))
    ngood = len(pos)
    if ngood == 0:
        return 0.0
    j = np.arange(1, ngood + 1, dtype=np.float64)
    precision = j / (pos + 1)
    if ap == "step":
        return float(np.mean(precision))
    # p_before = (j-1)/pos, or 1 at the top; same operations, in the same
    # order, as the official loop (ap = ap + d_recall*(old+prec)/2), so the
    # sum is bit-identical to it.
    before = np.ones(ngood)
    nz = pos != 0
    before[nz] = (j[nz] - 1) / pos[nz]
    terms = (1.0 / ngood) * (before + precision) / 2
    return float(np.cumsum(terms)[-1])


def evaluate_market(matrix, q_pids, q_cams, g_pids, g_cams, ap="trapezoid", similarity=False,
                    max_rank=None, block=BLOCK):
    """Official Market-1501 evaluation of a queries × gallery matrix.

    Returns {"cmc": float64 array (length max_rank, default the gallery
    size), "mAP": float, "ap": per-query AP, "first": per-query position of
    the first good image (−1: none), "num_queries", "num_valid" (queries with
    a good image), "ap_rule"}.
    """
    if ap not in AP_RULES:
        raise ValueError("evaluate_market: ap must be one of %s, got %r" % (AP_RULES, ap))
    matrix, q_pids, q_cams, g_pids, g_cams = check_inputs(
        matrix, q_pids, q_cams, g_pids, g_cams, "evaluate_market")
    nq, ng = matrix.shape
    max_rank = ng if max_rank is None else int(max_rank)
    if max_rank < 1:
        raise ValueError("evaluate_market: max_rank must be >= 1, got %r" % (max_rank,))
    aps = np.zeros(nq)
    first = np.full(nq, -1, np.int64)
    # Id -1 is junk for every query: drop those columns once (order kept).
    keep = np.flatnonzero(g_pids != JUNK_ID)
    g_pids, g_cams = g_pids[keep], g_cams[keep]
    for start in range(0, nq, block):
        stop = min(start + block, nq)
        dist = as_distance(matrix[start:stop], similarity).take(keep, axis=1)  # C order: rows contiguous
        if np.isnan(dist).any():
            raise ValueError("evaluate_market: the matrix holds NaN (query rows %d-%d)" % (start, stop - 1))
        junk, good = marks(q_pids[start:stop], q_cams[start:stop], g_pids, g_cams)
        dist[junk] = np.nan     # the query's own camera (id -1 is dropped already)
        for b in range(stop - start):
            pos = good_positions(dist[b], np.flatnonzero(good[b]))
            if len(pos):
                first[start + b] = pos[0]
                aps[start + b] = average_precision(pos, ap)
    hits = first[first >= 0]
    counts = np.bincount(hits[hits < max_rank], minlength=max_rank)
    cmc = np.cumsum(counts)[:max_rank] / float(nq)
    return {"cmc": cmc, "mAP": float(np.mean(aps)), "ap": aps, "first": first,
            "num_queries": int(nq), "num_valid": int(len(hits)), "ap_rule": ap}
