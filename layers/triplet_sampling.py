"""Triplet and pair sampling for MTDnet (Chen et al. 2017, "The multi-task
network"), plain numpy, no Caffe.

- A triplet is (A1, A2, B2): a positive pair (A1, A2) of one person seen by
  two cameras, plus a negative image B2 of another person from A2's camera.
  Ten triplets per positive pair, and every positive pair in both camera
  directions (A1 from camera a and A2 from b, and the reverse).
- The cross-domain net pairs a source-domain pair with each target pair and
  labels the two with XNOR of their same/different labels (paper Eq. 3).
"""
import numpy as np

TRIPLETS_PER_PAIR = 10  # "for each positive pair, we produce ten triplets" (§The multi-task network)


def positive_pairs(pids, cams):
    """Ordered index pairs (i, j), i != j, of the same person from different
    cameras: both directions of every cross-camera pair. A dataset with one
    camera label only (i-LIDS) pairs any two images of a person.
    Returns an int64 array P × 2."""
    pids = np.asarray(pids)
    cams = np.asarray(cams)
    one_camera = len(np.unique(cams)) < 2
    out = []
    for pid in np.unique(pids):
        idx = np.flatnonzero(pids == pid)
        for i in idx:
            for j in idx:
                if i != j and (one_camera or cams[i] != cams[j]):
                    out.append((i, j))
    return np.asarray(out, np.int64).reshape(-1, 2)


def sample_triplets(pids, cams, per_pair=TRIPLETS_PER_PAIR, seed=0):
    """All training triplets (anchor, positive, negative) as an int64 array
    T × 3 of image indices, T = per_pair × number of ordered positive pairs,
    shuffled. The negative is a different person from the positive's camera
    (any camera where that camera holds no other person)."""
    pids = np.asarray(pids)
    cams = np.asarray(cams)
    if per_pair < 1:
        raise ValueError("sample_triplets: per_pair must be >= 1, got %r" % per_pair)
    pairs = positive_pairs(pids, cams)
    if len(pairs) == 0:
        raise ValueError("sample_triplets: no positive pair (no person has two images "
                         "from different cameras)")
    rng = np.random.RandomState(seed)
    by_cam = {c: np.flatnonzero(cams == c) for c in np.unique(cams)}
    out = np.empty((len(pairs) * per_pair, 3), np.int64)
    for k, (a, p) in enumerate(pairs):
        pool = by_cam[cams[p]]
        pool = pool[pids[pool] != pids[a]]
        if len(pool) == 0:
            pool = np.flatnonzero(pids != pids[a])
        if len(pool) == 0:
            raise ValueError("sample_triplets: only one person; no negative exists")
        rows = slice(k * per_pair, (k + 1) * per_pair)
        out[rows, 0] = a
        out[rows, 1] = p
        out[rows, 2] = rng.choice(pool, per_pair, replace=len(pool) < per_pair)
    return out[rng.permutation(len(out))]


def sample_pairs(pids, cams, count, seed=0, pos=None):
    """`count` source-domain pairs (i, j, label) as int64 count × 3, half of
    them positive (same person, different cameras; label 1) and half negative
    (different persons; label 0), interleaved positive/negative. `pos`:
    positive_pairs(pids, cams) when the caller already has it."""
    pids = np.asarray(pids)
    cams = np.asarray(cams)
    rng = np.random.RandomState(seed)
    pos = positive_pairs(pids, cams) if pos is None else pos
    if len(pos) == 0:
        raise ValueError("sample_pairs: no positive pair in the source set")
    if len(np.unique(pids)) < 2:
        raise ValueError("sample_pairs: the source set needs at least two persons")
    out = np.empty((count, 3), np.int64)
    for k in range(count):
        if k % 2 == 0:
            i, j = pos[rng.randint(len(pos))]
            out[k] = (i, j, 1)
        else:
            i = rng.randint(len(pids))
            others = np.flatnonzero(pids != pids[i])
            out[k] = (i, rng.choice(others), 0)
    return out


def xnor(a, b):
    """XNOR of binary pair labels (paper Eq. 3): 1 where the source pair and
    the target pair are both positive or both negative, else 0. `b` may be a
    whole multiple longer than `a`; `a` is then repeated to match (one source
    pair compared with several target pairs)."""
    a = np.asarray(a).reshape(-1)
    b = np.asarray(b).reshape(-1)
    if len(a) == 0 or len(b) % len(a):
        raise ValueError("xnor: %d target labels are not a multiple of %d source labels"
                         % (len(b), len(a)))
    for name, v in (("source", a), ("target", b)):
        if not np.all((v == 0) | (v == 1)):
            raise ValueError("xnor: %s labels must be 0 or 1, got %s" % (name, np.unique(v)))
    return (np.tile(a, len(b) // len(a)) == b).astype(np.float32)


def triplet_epochs(triplets, batch, seed=0, start=0):
    """Endless stream of batches (rows of `triplets`), reshuffled each epoch
    with a seed derived from `seed` and the epoch; `start` skips that many
    batches (resuming)."""
    n = len(triplets)
    if n == 0:
        raise ValueError("triplet_epochs: no triplets")
    epoch, pos, order = -1, n, None
    skipped = 0
    while True:
        rows = []
        while len(rows) < batch:
            if pos >= n:
                epoch += 1
                order = np.random.RandomState((seed, epoch)).permutation(n)
                pos = 0
            take = min(batch - len(rows), n - pos)
            rows.extend(order[pos:pos + take])
            pos += take
        if skipped < start:
            skipped += 1
            continue
        yield triplets[np.asarray(rows)]
