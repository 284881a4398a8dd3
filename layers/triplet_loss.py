"""In-batch triplet loss for Geng16's TL variants (Table 4: SID/PV/TL
combinations; Table 5: TL with random vs pairwise-consistent dropout).

Geng16 names the triplet loss [6, 29, 4] but not its triplet selection. We
use the batch-all selection of Hermans, Beyer & Leibe, "In Defense of the
Triplet Loss for Person Re-Identification" (2017), §2: every (anchor,
positive, negative) of the K × M batch — K·M·(M−1)·(K−1)·M triplets, 3,968
for K = 32, M = 2 — with the FaceNet hinge (Schroff et al. 2015, Eq. 1)

    L = 1/T · Σ_t [ ||a_t − p_t||² − ||a_t − n_t||² + margin ]₊

averaged over all T triplets. Selection (InBatchTriplets) and loss
(TripletLoss) are two layers so that the pairwise-consistent dropout layer
can sit between them with one mask per triplet.
"""
import caffe
import numpy as np

from common.params import Param, parse_param_str
from layers.pair_generation import scatter_rows

# Not given by Geng16; MTDnet's α = 1 (layers/triplet_rank_loss.py) on features of this scale.
MARGIN = 1.0
M = 2  # images per identity (Geng16 §4.1)

SELECT_PARAMS = {"m": Param(int, M, lambda v: v >= 2, ">= 2")}
LOSS_PARAMS = {"margin": Param(float, MARGIN, lambda v: v >= 0, ">= 0")}


def triplet_count(batch, m):
    """Batch-all triplets of a K × M batch: K·M anchors × (M−1) × (K−1)·M."""
    if batch % m:
        raise ValueError("InBatchTriplets: batch of %d images is not a whole number of "
                         "identities of %d images" % (batch, m))
    return batch * (m - 1) * (batch - m)


def batch_all_triplets(labels):
    """(anchor, positive, negative) index arrays of every valid triplet."""
    labels = np.asarray(labels).reshape(-1)
    same = labels[:, None] == labels[None, :]
    pos = same & ~np.eye(len(labels), dtype=bool)
    a, p = np.nonzero(pos)                       # anchor-positive pairs
    neg = ~same[a]                               # their negatives, row per pair
    row, n = np.nonzero(neg)
    return a[row], p[row], n


def triplet_loss_forward(a, p, n, margin=MARGIN):
    """Mean hinge over triplets and the per-triplet hinge arguments."""
    hinge = np.sum((a - p) ** 2, 1) - np.sum((a - n) ** 2, 1) + margin
    return float(np.maximum(hinge, 0).sum() / len(hinge)), hinge


def triplet_loss_backward(a, p, n, hinge, scale=1.0):
    """(da, dp, dn) times `scale` (the top's diff)."""
    active = (hinge > 0).astype(a.dtype)[:, None] * (2.0 * scale / len(hinge))
    return active * (n - p), active * (p - a), active * (a - n)


class InBatchTriplets(caffe.Layer):
    """bottoms: features (N × …), labels (N); tops: anchor, positive,
    negative (T × D), T = triplet_count(N, m)."""

    def setup(self, bottom, top):
        if len(bottom) != 2 or len(top) != 3:
            raise ValueError("InBatchTriplets: expects 2 bottoms (features, labels) and 3 tops, "
                             "got %d and %d" % (len(bottom), len(top)))
        self.m = parse_param_str(self.param_str, SELECT_PARAMS, "InBatchTriplets")["m"]

    def reshape(self, bottom, top):
        n = bottom[0].data.shape[0]
        if bottom[1].data.size != n:
            raise ValueError("InBatchTriplets: %d features but %d labels" % (n, bottom[1].data.size))
        self.count = triplet_count(n, self.m)
        for k in range(3):  # pycaffe's blob vectors index but do not iterate
            top[k].reshape(self.count, bottom[0].data.size // n)

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(bottom[0].data.shape[0], -1)
        self.idx = batch_all_triplets(bottom[1].data)
        if len(self.idx[0]) != self.count:
            raise ValueError("InBatchTriplets: labels give %d triplets, a K x M batch with M = %d "
                             "gives %d; the batch is not identity-sampled as declared"
                             % (len(self.idx[0]), self.m, self.count))
        for k in range(3):
            top[k].data[...] = x[self.idx[k]]

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            n = bottom[0].data.shape[0]
            dx = scatter_rows(n, self.idx, [top[k].diff for k in range(3)])
            bottom[0].diff[...] = dx.reshape(bottom[0].diff.shape)


class TripletLoss(caffe.Layer):
    """bottoms: anchor, positive, negative (T × D); top: the mean hinge.
    Needs an explicit loss_weight in the prototxt (Python loss layer)."""

    def setup(self, bottom, top):
        if len(bottom) != 3 or len(top) != 1:
            raise ValueError("TripletLoss: expects 3 bottoms (anchor, positive, negative) and "
                             "1 top, got %d and %d" % (len(bottom), len(top)))
        self.margin = parse_param_str(self.param_str, LOSS_PARAMS, "TripletLoss")["margin"]

    def reshape(self, bottom, top):
        shapes = [bottom[k].data.shape for k in range(3)]
        if len(set(shapes)) != 1:
            raise ValueError("TripletLoss: bottoms differ in shape: %s" % shapes)
        top[0].reshape(1)

    def forward(self, bottom, top):
        a, p, n = (bottom[k].data.reshape(bottom[k].data.shape[0], -1) for k in range(3))
        loss, self.hinge = triplet_loss_forward(a, p, n, self.margin)
        top[0].data[0] = loss

    def backward(self, top, propagate_down, bottom):
        a, p, n = (bottom[k].data.reshape(bottom[k].data.shape[0], -1) for k in range(3))
        grads = triplet_loss_backward(a, p, n, self.hinge, float(top[0].diff[0]))
        for k in range(3):
            if propagate_down[k]:
                bottom[k].diff[...] = grads[k].reshape(bottom[k].diff.shape)
