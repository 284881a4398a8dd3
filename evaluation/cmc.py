"""Single-shot CMC (docs/evaluation.md; MTDnet Table 1; Geng16 Tables 1, 3, 6,
7, 9): the gallery holds one image per identity. Where an identity has
several candidate images (CUHK03's five per view), one is drawn at random,
and the CMC is averaged over `repeats` draws. Probe and gallery come from
different cameras: for each probe, only gallery images from a camera other
than its own are candidates.

CMC(r) = share of the probes whose true identity ranks within the top r+1
of the drawn gallery. Ties in distance are broken by gallery order (as a
stable sort would). A probe whose identity has no candidate counts as a miss
at every rank.
"""
import numpy as np

from evaluation.distance import as_distance, check_inputs

REPEATS = 10    # the papers do not say how many draws; 10 is common
BLOCK = 256     # probes per block


def marks(q_pids, q_cams, g_pids, g_cams):
    """(junk, good): boolean probes × gallery matrices of the single-shot
    rule: gallery images from the probe's own camera are no candidates
    (junk); good = its person from another camera. The one statement of the
    rule, for the CMC and its ranked lists (evaluation/visrank.py)."""
    q_pids, q_cams = np.asarray(q_pids).reshape(-1, 1), np.asarray(q_cams).reshape(-1, 1)
    g_pids, g_cams = np.asarray(g_pids).reshape(1, -1), np.asarray(g_cams).reshape(1, -1)
    junk = g_cams == q_cams
    return junk, (g_pids == q_pids) & ~junk


def _draw(dist, q_pids, q_cams, g_pids, g_cams, rng):
    """One random draw for a block of probes: the 0-based rank of each
    probe's true identity (−1 when it has no candidate)."""
    nq, ng = dist.shape
    order = np.argsort(g_pids, kind="stable")       # gallery grouped by identity
    ids, starts = np.unique(g_pids[order], return_index=True)
    cand = ~marks(q_pids, q_cams, g_pids[order], g_cams[order])[0]
    keys = rng.random((nq, ng))
    keys[~cand] = np.inf
    # Per (probe, identity), the candidate with the smallest random key.
    best = np.minimum.reduceat(keys, starts, axis=1)
    has = np.isfinite(best)
    chosen = (keys == np.repeat(best, np.diff(np.append(starts, ng)), axis=1)) & cand
    col = np.where(chosen, order[None, :], ng)
    sel_idx = np.minimum.reduceat(col, starts, axis=1)          # gallery index drawn
    sel_d = np.take_along_axis(dist, np.minimum(sel_idx, ng - 1), axis=1)
    true = np.searchsorted(ids, q_pids)
    true = np.where((true < len(ids)) & (ids[np.minimum(true, len(ids) - 1)] == q_pids), true, -1)
    rank = np.full(nq, -1, np.int64)
    for i in np.flatnonzero(true >= 0):
        t = true[i]
        if not has[i, t]:
            continue
        dt, it = sel_d[i, t], sel_idx[i, t]
        others = has[i]
        before = others & ((sel_d[i] < dt) | ((sel_d[i] == dt) & (sel_idx[i] < it)))
        rank[i] = np.count_nonzero(before)
    return rank, len(ids)


def single_shot_cmc(matrix, q_pids, q_cams, g_pids, g_cams, repeats=REPEATS, seed=0,
                    similarity=False, max_rank=None, block=BLOCK):
    """Single-shot CMC averaged over `repeats` seeded random gallery draws.

    Returns a float64 array of length `max_rank` (default: the number of
    gallery identities); entry r is the rank-(r+1) matching rate.
    """
    if repeats < 1:
        raise ValueError("single_shot_cmc: repeats must be >= 1, got %r" % (repeats,))
    matrix, q_pids, q_cams, g_pids, g_cams = check_inputs(
        matrix, q_pids, q_cams, g_pids, g_cams, "single_shot_cmc")
    nq = matrix.shape[0]
    n_ids = len(np.unique(g_pids))
    max_rank = n_ids if max_rank is None else int(max_rank)
    if max_rank < 1:
        raise ValueError("single_shot_cmc: max_rank must be >= 1, got %r" % (max_rank,))
    rng = np.random.default_rng(seed)
    counts = np.zeros(max_rank)
    for _ in range(repeats):
        for start in range(0, nq, block):
            stop = min(start + block, nq)
            dist = as_distance(matrix[start:stop], similarity)
            if np.isnan(dist).any():
                raise ValueError("single_shot_cmc: the matrix holds NaN (query rows %d-%d)"
                                 % (start, stop - 1))
            rank, _ = _draw(dist, q_pids[start:stop], q_cams[start:stop], g_pids, g_cams, rng)
            hits = rank[(rank >= 0) & (rank < max_rank)]
            counts += np.bincount(hits, minlength=max_rank)
    return np.cumsum(counts) / float(nq * repeats)
