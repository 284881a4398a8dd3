"""L2 normalisation of each sample's feature vector (MTDnet §"Ranking task":
the 512-D `feat` is L2-normalised before the triplet loss).

    y = x / sqrt(||x||² + eps)
"""
import caffe
import numpy as np

from common.params import Param, parse_param_str

PARAMS = {"eps": Param(float, 1e-10, lambda v: v >= 0, ">= 0")}


def l2_normalize_forward(x, eps):
    """Row-wise L2 normalisation of x (N × D); returns (y, norms N×1)."""
    x = x.reshape(x.shape[0], -1)
    norm = np.sqrt(np.sum(x * x, axis=1, keepdims=True) + eps)
    return x / norm, norm


def l2_normalize_backward(y, norm, dy):
    """dL/dx given y, the norms and dL/dy: (dy − y·⟨dy, y⟩) / ||x||."""
    y = y.reshape(y.shape[0], -1)
    dy = dy.reshape(dy.shape[0], -1)
    return (dy - y * np.sum(dy * y, axis=1, keepdims=True)) / norm


class L2Normalize(caffe.Layer):
    """bottom: N × … features; top: same shape, each sample of unit norm."""

    def setup(self, bottom, top):
        if len(bottom) != 1 or len(top) != 1:
            raise ValueError("L2Normalize: expects 1 bottom and 1 top, got %d and %d"
                             % (len(bottom), len(top)))
        self.eps = parse_param_str(self.param_str, PARAMS, "L2Normalize")["eps"]

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        y, self.norm = l2_normalize_forward(bottom[0].data, self.eps)
        top[0].data[...] = y.reshape(top[0].data.shape)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            dx = l2_normalize_backward(top[0].data, self.norm, top[0].diff)
            bottom[0].diff[...] = dx.reshape(bottom[0].diff.shape)
