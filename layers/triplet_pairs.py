"""Regrouping of a triplet batch into the classification branch's pairs
(Chen et al. 2017, §"The multi-task network": "the three sets of feature maps
… are regrouped into two types of pairs, a positive pair and a negative
pair").

Bottom: 3N × … laid out as triplets (rows 3i, 3i+1, 3i+2 = A1, A2, B2).
Tops: `left` and `right`, 2N × … each, and `label` (2N): rows 0..N−1 are the
positive pairs (A1_i, A2_i) with label 1, rows N..2N−1 the negative pairs
(A1_i, B2_i) with label 0 (the authors' Concat order: concat12, concat13).
A1 appears in two pairs, so its gradient is the sum of both.
"""
import caffe
import numpy as np

from common.params import parse_param_str


def triplet_pairs_forward(x):
    """(left, right, label) from a 3N × … array laid out as triplets."""
    if x.shape[0] % 3:
        raise ValueError("TripletPairs: batch of %d rows is not a whole number of triplets"
                         % x.shape[0])
    a, p, n = x[0::3], x[1::3], x[2::3]
    label = np.concatenate([np.ones(len(a)), np.zeros(len(a))]).astype(np.float32)
    return np.concatenate([a, a]), np.concatenate([p, n]), label


def triplet_pairs_backward(dleft, dright):
    """dL/dx (3N × …) from the diffs of the two pair sides (2N × … each)."""
    n = dleft.shape[0] // 2
    dx = np.empty((3 * n,) + dleft.shape[1:], dleft.dtype)
    dx[0::3] = dleft[:n] + dleft[n:]   # A1 is the left side of both pairs
    dx[1::3] = dright[:n]
    dx[2::3] = dright[n:]
    return dx


class TripletPairs(caffe.Layer):
    """bottom: 3N × C × H × W; tops: left, right (2N × C × H × W), label (2N)."""

    def setup(self, bottom, top):
        if len(bottom) != 1 or len(top) != 3:
            raise ValueError("TripletPairs: expects 1 bottom and 3 tops (left, right, label), "
                             "got %d and %d" % (len(bottom), len(top)))
        parse_param_str(self.param_str, {}, "TripletPairs")

    def reshape(self, bottom, top):
        shape = bottom[0].data.shape
        if shape[0] % 3:
            raise ValueError("TripletPairs: bottom has %d rows, not a multiple of 3" % shape[0])
        pairs = 2 * (shape[0] // 3)
        top[0].reshape(pairs, *shape[1:])
        top[1].reshape(pairs, *shape[1:])
        top[2].reshape(pairs)

    def forward(self, bottom, top):
        left, right, label = triplet_pairs_forward(bottom[0].data)
        top[0].data[...] = left
        top[1].data[...] = right
        top[2].data[...] = label

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = triplet_pairs_backward(top[0].diff, top[1].diff)
