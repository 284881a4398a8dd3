"""MTDnet's triplet ranking loss (Chen et al. 2017, Eq. 1, as in FaceNet):

    L = 1/(2N) · Σ_i [ ||a_i − p_i||² − ||a_i − n_i||² + α ]₊

over N triplets (anchor A1, positive A2, negative B2) of L2-normalised
features. The bottom holds the batch laid out as triplets: rows 3i, 3i+1,
3i+2 are (a_i, p_i, n_i). The 1/(2N) averaging and α = 1 are those of the
authors' Caffe TripletLoss layer.
"""
import caffe
import numpy as np

from common.params import Param, parse_param_str

MARGIN = 1.0  # α: triplet_loss_param { margin: 1.0 } in the authors' train_val.prototxt

PARAMS = {"margin": Param(float, MARGIN, lambda v: v >= 0, ">= 0")}


def split_triplets(x):
    """(a, p, n), each N × D, from a 3N × … blob laid out as triplets."""
    x = x.reshape(x.shape[0], -1)
    if x.shape[0] % 3:
        raise ValueError("TripletRankLoss: batch of %d rows is not a whole number of triplets"
                         % x.shape[0])
    return x[0::3], x[1::3], x[2::3]


def triplet_loss_forward(x, margin=MARGIN):
    """Loss value and the per-triplet hinge arguments (N,)."""
    a, p, n = split_triplets(x)
    hinge = np.sum((a - p) ** 2, 1) - np.sum((a - n) ** 2, 1) + margin
    return float(np.sum(np.maximum(hinge, 0)) / (2 * len(a))), hinge


def triplet_loss_backward(x, hinge, scale=1.0):
    """dL/dx (same layout as x) times `scale` (the top's diff, i.e. the loss weight)."""
    a, p, n = split_triplets(x)
    active = (hinge > 0).astype(x.dtype)[:, None] * (scale / len(a))
    dx = np.empty((x.shape[0], a.shape[1]), x.dtype)
    dx[0::3] = active * (n - p)   # d/da: 2(a−p) − 2(a−n), over 2N
    dx[1::3] = active * (p - a)
    dx[2::3] = active * (a - n)
    return dx


class TripletRankLoss(caffe.Layer):
    """bottom: 3N × D features laid out as triplets; top: the scalar loss.
    Needs an explicit loss_weight in the prototxt (Python loss layer)."""

    def setup(self, bottom, top):
        if len(bottom) != 1 or len(top) != 1:
            raise ValueError("TripletRankLoss: expects 1 bottom and 1 top, got %d and %d"
                             % (len(bottom), len(top)))
        self.margin = parse_param_str(self.param_str, PARAMS, "TripletRankLoss")["margin"]

    def reshape(self, bottom, top):
        if bottom[0].data.shape[0] % 3:
            raise ValueError("TripletRankLoss: bottom has %d rows, not a multiple of 3"
                             % bottom[0].data.shape[0])
        top[0].reshape(1)

    def forward(self, bottom, top):
        loss, self.hinge = triplet_loss_forward(bottom[0].data, self.margin)
        top[0].data[0] = loss

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            dx = triplet_loss_backward(bottom[0].data, self.hinge, float(top[0].diff[0]))
            bottom[0].diff[...] = dx.reshape(bottom[0].diff.shape)
