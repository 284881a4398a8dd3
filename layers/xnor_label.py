"""XNOR pair labelling of the cross-domain net (Chen et al. 2017, Eq. 3):
label_p = label_a ⊙ label_b, 1 when the source pair and
the target pair are both positive or both negative, else 0. Caffe's own
ContrastiveLoss then takes the two streams' pair features and this label.

Bottoms: source pair labels (M) and target pair labels (K·M; the source
labels are repeated K times to match, as the source pair features are).
Top: the XNOR labels (K·M). Labels carry no gradient.
"""
import caffe

from common.params import parse_param_str
from layers.triplet_sampling import xnor


class XnorLabel(caffe.Layer):
    def setup(self, bottom, top):
        if len(bottom) != 2 or len(top) != 1:
            raise ValueError("XnorLabel: expects 2 bottoms (source, target labels) and 1 top, "
                             "got %d and %d" % (len(bottom), len(top)))
        parse_param_str(self.param_str, {}, "XnorLabel")

    def reshape(self, bottom, top):
        m, k = bottom[0].data.size, bottom[1].data.size
        if m == 0 or k % m:
            raise ValueError("XnorLabel: %d target labels are not a multiple of %d source labels"
                             % (k, m))
        top[0].reshape(k)

    def forward(self, bottom, top):
        top[0].data[...] = xnor(bottom[0].data, bottom[1].data)

    def backward(self, top, propagate_down, bottom):
        for i, down in enumerate(propagate_down):
            if down:
                bottom[i].diff[...] = 0
