"""Gradient reversal (Ganin & Lempitsky 2015 [9]; Geng16 §5.6, Table 9's
domain-classifier baseline for unsupervised transfer): "a gradient reversal
layer that multiplies the gradient by a certain negative constant during
back-propagation", so the features below it learn to confuse the domain
classifier above it.

    forward:  y = x
    backward: dL/dx = −coeff · dL/dy        (coeff ≥ 0)
"""
import caffe
import numpy as np

from common.params import Param, parse_param_str

PARAMS = {"coeff": Param(float, 1.0, lambda v: v >= 0, ">= 0")}


def gradient_reversal_forward(x):
    """The identity."""
    return np.asarray(x)


def gradient_reversal_backward(dy, coeff):
    """dL/dx = −coeff · dL/dy."""
    return -coeff * np.asarray(dy)


class GradientReversal(caffe.Layer):
    """bottom: any blob; top: the same values; its gradient reaches the
    bottom reversed and scaled by `coeff` (param_str JSON, default 1.0)."""

    def setup(self, bottom, top):
        if len(bottom) != 1 or len(top) != 1:
            raise ValueError("GradientReversal: expects 1 bottom and 1 top, got %d and %d"
                             % (len(bottom), len(top)))
        self.coeff = parse_param_str(self.param_str, PARAMS, "GradientReversal")["coeff"]

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = gradient_reversal_forward(bottom[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = gradient_reversal_backward(top[0].diff, self.coeff)
