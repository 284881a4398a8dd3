"""Euclidean distances between feature sets, in blocks of query rows (Geng16
§4.1: "SIR ... the Euclidean distance between the pool5 features").

A Market-1501 test (3,368 × 19,732) as one float64 expression
``|a|² + |b|² − 2ab`` would hold several 530 MB temporaries; computed block by
block in float64 and stored as float32, the only large array is the 266 MB
result.
"""
import numpy as np

BLOCK = 256  # query rows per block: 256 × 19,732 float64 ≈ 40 MB of temporaries


def euclidean(a, b, block=BLOCK, dtype=np.float32):
    """Distances ‖a_i − b_j‖ (len(a) × len(b)) of row features `a` and `b`.

    Each block is computed in float64 (so the cancellation in
    |a|² + |b|² − 2ab stays small) and clipped at 0 before the square root.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError("euclidean: features must be 2-D with equal widths, got %s and %s"
                         % (a.shape, b.shape))
    if block < 1:
        raise ValueError("euclidean: block must be >= 1, got %r" % (block,))
    b64 = b.astype(np.float64)
    b_sq = np.einsum("ij,ij->i", b64, b64)
    out = np.empty((len(a), len(b)), dtype)
    for start in range(0, len(a), block):
        a64 = a[start:start + block].astype(np.float64)
        sq = np.einsum("ij,ij->i", a64, a64)[:, None] + b_sq[None, :]
        sq -= 2.0 * a64.dot(b64.T)
        np.maximum(sq, 0.0, out=sq)
        out[start:start + block] = np.sqrt(sq)
    return out


def check_inputs(matrix, q_pids, q_cams, g_pids, g_cams, where):
    """Validate the shapes of a queries × gallery matrix and its id/camera
    vectors; return them as arrays (matrix unchanged, ids and cameras as
    int64). NaN is checked block by block by the metrics (a whole-matrix
    test would allocate as much again)."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2:
        raise ValueError("%s: the matrix must be 2-D (queries × gallery), got shape %s"
                         % (where, matrix.shape))
    vectors = []
    for name, values, size in (("q_pids", q_pids, matrix.shape[0]), ("q_cams", q_cams, matrix.shape[0]),
                               ("g_pids", g_pids, matrix.shape[1]), ("g_cams", g_cams, matrix.shape[1])):
        values = np.asarray(values).reshape(-1)
        if len(values) != size:
            raise ValueError("%s: %s has %d entries for a %d × %d matrix"
                             % (where, name, len(values), matrix.shape[0], matrix.shape[1]))
        vectors.append(values.astype(np.int64))
    if 0 in matrix.shape:
        raise ValueError("%s: no queries or an empty gallery (matrix shape %s)" % (where, matrix.shape))
    return (matrix,) + tuple(vectors)


def as_distance(rows, similarity):
    """Rows of the matrix as distances: scores are negated (exactly, so the
    order and the ties are those of the scores, reversed)."""
    rows = np.asarray(rows)
    if not np.issubdtype(rows.dtype, np.floating):
        rows = rows.astype(np.float64)  # an unsigned score would wrap when negated
    return -rows if similarity else rows
