"""Nearest neighbours across two sets of row vectors, block by block (Geng16
§4.2: the cross-view k-NN graph W and the soft labels both need each
sample's nearest neighbours in the *other* camera view).

Market-1501's 12,936 training images split over two views would make a
6,468² float64 distance matrix of 335 MB; a block of query rows at a time
keeps the temporaries to a few tens of MB.
"""
import numpy as np

BLOCK = 512  # query rows per block: 512 × 6,468 float64 ≈ 26 MB per temporary


def _check(query, gallery, k, largest, where):
    query = np.asarray(query)
    gallery = np.asarray(gallery)
    if query.ndim != 2 or gallery.ndim != 2 or query.shape[1] != gallery.shape[1]:
        raise ValueError("%s: features must be 2-D with equal widths, got %s and %s"
                         % (where, query.shape, gallery.shape))
    if not 1 <= k <= largest(query, gallery):
        raise ValueError("%s: k must be in [1, %d], got %r" % (where, largest(query, gallery), k))
    return query, gallery


def _distance_blocks(query, gallery, block):
    """(start, squared distances of query rows start… × all gallery rows),
    as |q|² + |g|² − 2qg in float64 so the cancellation stays small."""
    g64 = gallery.astype(np.float64)
    g_sq = np.einsum("ij,ij->i", g64, g64)
    for start in range(0, len(query), block):
        q64 = query[start:start + block].astype(np.float64)
        dist = np.einsum("ij,ij->i", q64, q64)[:, None] + g_sq[None, :]
        dist -= 2.0 * q64.dot(g64.T)
        yield start, dist


def _smallest(dist, k, axis):
    """Positions of the k smallest entries along `axis`, closest first
    (`np.argpartition` picks them, only those k are sorted)."""
    part = np.take(np.argpartition(dist, k - 1, axis=axis), np.arange(k), axis=axis)
    order = np.argsort(np.take_along_axis(dist, part, axis=axis), axis=axis, kind="stable")
    return np.take_along_axis(part, order, axis=axis)


def nearest(query, gallery, k, block=BLOCK):
    """Indices (len(query) × k) of each query row's k nearest gallery rows by
    Euclidean distance, closest first."""
    query, gallery = _check(query, gallery, k, lambda q, g: len(g), "nearest")
    out = np.empty((len(query), k), np.int64)
    for start, dist in _distance_blocks(query, gallery, block):
        out[start:start + len(dist)] = _smallest(dist, k, axis=1)
    return out


def nearest_both_ways(a, b, k, block=BLOCK):
    """(k nearest b rows of each a row, k nearest a rows of each b row): as
    `nearest(a, b, k)` and `nearest(b, a, k)` but from one pass over the
    distances, keeping a running top k per b row, which halves the dominant
    matrix product."""
    a, b = _check(a, b, k, lambda q, g: min(len(q), len(g)), "nearest_both_ways")
    a_to_b = np.empty((len(a), k), np.int64)
    best_d = np.full((k, len(b)), np.inf)
    best_i = np.zeros((k, len(b)), np.int64)
    for start, dist in _distance_blocks(a, b, block):
        a_to_b[start:start + len(dist)] = _smallest(dist, k, axis=1)
        rows = np.broadcast_to(np.arange(start, start + len(dist))[:, None], dist.shape)
        cand_d, cand_i = np.vstack([best_d, dist]), np.vstack([best_i, rows])
        keep = _smallest(cand_d, k, axis=0)
        best_d = np.take_along_axis(cand_d, keep, axis=0)
        best_i = np.take_along_axis(cand_i, keep, axis=0)
    return a_to_b, np.ascontiguousarray(best_i.T)
