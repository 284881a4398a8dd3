"""In-batch pair generation for the pairwise verification loss (Geng16 §4.1
"Verification subnet" / minibatch scheme after Ding et al. [6]).

From a K × M identity-sampled batch (K identities, M images each): every
pair of distinct images, positives (same identity) and negatives; then the
smaller class — the positives — is duplicated at random until the two are
equal. An image appears in many pairs, so its gradient is the sum over them
(a sparse incidence-matrix product, no loop over pairs).

`pairs` (param_str) chooses how §5.2's "3,968 positive and negative pairs
being generated respectively" is read, for K = 32, M = 2:
- "unordered" (default): each pair once (i < j): 32 positives and 1,984
  negatives → 1,984 + 1,984 = 3,968 pairs in all;
- "ordered": both directions (i, j) and (j, i), since the verification
  subnet's ReLU(a − b) is asymmetric: 64 positives and 64 × 62 = 3,968
  negatives → 3,968 of each, 7,936 pairs.
The default keeps each comparison once, as Ding et al.'s scheme [6] the
paper follows (both readings: docs/reproducing.md, "Fidelity choices").
"""
import caffe
import numpy as np
import scipy.sparse

from common.params import Param, parse_param_str

M = 2  # images per identity in a Geng16 batch (§4.1: "two images for each person")

PAIRS = ("unordered", "ordered")

PARAMS = {"m": Param(int, M, lambda v: v >= 2, ">= 2"),
          "seed": Param(int, 0, lambda v: v >= 0, ">= 0"),
          "pairs": Param(str, PAIRS[0], lambda v: v in PAIRS, " or ".join(PAIRS))}


def _check_pairs(pairs):
    if pairs not in PAIRS:
        raise ValueError("PairGeneration: pairs must be %s, got %r" % (" or ".join(PAIRS), pairs))


def structure_counts(batch, m, pairs="unordered"):
    """(positives, negatives) among all pairs (`pairs`: unordered i < j, or
    ordered i != j) of a batch of batch // m identities × m images."""
    _check_pairs(pairs)
    if batch % m:
        raise ValueError("PairGeneration: batch of %d images is not a whole number of "
                         "identities of %d images" % (batch, m))
    k = batch // m
    both = 2 if pairs == "ordered" else 1
    pos = both * k * m * (m - 1) // 2
    return pos, both * batch * (batch - 1) // 2 - pos


def balanced_pair_count(batch, m, pairs="unordered"):
    """Pairs output for a K × M batch: twice the larger of the two classes."""
    return 2 * max(structure_counts(batch, m, pairs))


def balance(index, target, rng):
    """`index` repeated to `target` entries: each entry floor(target/len)
    times, the remainder drawn at random without replacement."""
    reps, extra = divmod(target, len(index))
    return np.concatenate([np.repeat(index, reps), rng.choice(index, extra, replace=False)])


def generate_pairs(labels, rng, pairs="unordered"):
    """(left, right, same) index arrays of the balanced pair set.

    All pairs i < j (unordered) or i != j (ordered); `same` is 1 where labels
    agree. The smaller class is duplicated at random (Geng16: the positives)
    to equal the other. Positives come first."""
    _check_pairs(pairs)
    labels = np.asarray(labels).reshape(-1)
    i, j = np.triu_indices(len(labels), k=1)
    if pairs == "ordered":
        i, j = np.concatenate([i, j]), np.concatenate([j, i])
    same = labels[i] == labels[j]
    pos, neg = np.flatnonzero(same), np.flatnonzero(~same)
    if not len(pos) or not len(neg):
        raise ValueError("PairGeneration: the batch has %d positive and %d negative pairs; "
                         "it needs both (K >= 2 identities, M >= 2 images each)"
                         % (len(pos), len(neg)))
    target = max(len(pos), len(neg))
    pos, neg = balance(pos, target, rng), balance(neg, target, rng)
    sel = np.concatenate([pos, neg])
    return i[sel], j[sel], np.concatenate([np.ones(target), np.zeros(target)]).astype(np.float32)


def incidence(rows, n):
    """n × len(rows) sparse 0/1 matrix S with S[rows[p], p] = 1, so that
    S @ d sums the rows of d that belong to each image."""
    return scipy.sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, np.arange(len(rows)))),
                                   shape=(n, len(rows)))


def scatter_rows(n, indices, diffs):
    """Σ over sides of incidence(indices_s) @ diffs_s: per-image gradient sums."""
    out = np.zeros((n, diffs[0].shape[1]), np.float32)
    for idx, d in zip(indices, diffs):
        out += incidence(idx, n) @ d
    return out


class PairGeneration(caffe.Layer):
    """bottoms: features (N × …), labels (N); tops: left, right (P × D) and
    label (P; 1 = same person), P = balanced_pair_count(N, m, pairs)."""

    def setup(self, bottom, top):
        if len(bottom) != 2 or len(top) != 3:
            raise ValueError("PairGeneration: expects 2 bottoms (features, labels) and 3 tops "
                             "(left, right, label), got %d and %d" % (len(bottom), len(top)))
        opts = parse_param_str(self.param_str, PARAMS, "PairGeneration")
        self.m = opts["m"]
        self.order = opts["pairs"]
        self.rng = np.random.RandomState(opts["seed"])

    def reshape(self, bottom, top):
        n = bottom[0].data.shape[0]
        if bottom[1].data.size != n:
            raise ValueError("PairGeneration: %d features but %d labels" % (n, bottom[1].data.size))
        self.pairs = balanced_pair_count(n, self.m, self.order)
        dim = bottom[0].data.size // n
        top[0].reshape(self.pairs, dim)
        top[1].reshape(self.pairs, dim)
        top[2].reshape(self.pairs)

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(bottom[0].data.shape[0], -1)
        self.left, self.right, same = generate_pairs(bottom[1].data, self.rng, self.order)
        if len(same) != self.pairs:
            raise ValueError("PairGeneration: labels give %d pairs, a K x M batch with M = %d "
                             "gives %d; the batch is not identity-sampled as declared"
                             % (len(same), self.m, self.pairs))
        top[0].data[...] = x[self.left]
        top[1].data[...] = x[self.right]
        top[2].data[...] = same

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            n = bottom[0].data.shape[0]
            dx = scatter_rows(n, (self.left, self.right), (top[0].diff, top[1].diff))
            bottom[0].diff[...] = dx.reshape(bottom[0].diff.shape)
