"""Pairwise-consistent dropout (Geng16 §3.1 "Loss specific dropout unit",
Eq. 1 and Table 5).

The features of one compared pair (or triplet) share one Bernoulli mask:
r_i = r_j when images i and j are compared, so their difference reflects
the two people rather than two different masks. Bottoms are the sides of
the pairs (row p of every bottom belongs to pair p); the mask of row p is
shared across the bottoms. With "consistent": false every bottom draws its
own mask — the standard random dropout of Table 5's "Random" rows.

Inverted dropout: kept units are scaled by 1 / (1 − ratio) in TRAIN, so the
layer is the identity in TEST.
"""
import caffe
import numpy as np

from common.params import Param, parse_param_str

RATIO = 0.5  # Caffe's Dropout default; geng16.py passes GoogLeNet's 0.4 / 0.7

PARAMS = {"ratio": Param(float, RATIO, lambda v: 0 <= v < 1, "in [0, 1)"),
          "consistent": Param(bool, True),
          "seed": Param(int, 0, lambda v: v >= 0, ">= 0")}


def draw_masks(rng, shape, count, ratio, consistent):
    """`count` masks of `shape` (already scaled by 1/(1−ratio)); one shared
    mask when `consistent`."""
    scale = np.float32(1.0 / (1.0 - ratio))
    if consistent:
        mask = (rng.random(shape, dtype=np.float32) >= ratio) * scale
        return [mask] * count
    return [(rng.random(shape, dtype=np.float32) >= ratio) * scale for _ in range(count)]


def _solver_rank():
    try:
        return caffe.solver_rank()
    except AttributeError:
        return 0


class PairwiseConsistentDropout(caffe.Layer):
    """bottoms: k ≥ 1 blobs of one shape (the sides of the pairs); tops: the
    same k blobs masked."""

    def setup(self, bottom, top):
        if not bottom or len(bottom) != len(top):
            raise ValueError("PairwiseConsistentDropout: needs as many tops as bottoms (>= 1), "
                             "got %d and %d" % (len(bottom), len(top)))
        opts = parse_param_str(self.param_str, PARAMS, "PairwiseConsistentDropout")
        self.ratio, self.consistent = opts["ratio"], opts["consistent"]
        # Each solver of a multi-GPU run draws its own masks.
        self.rng = np.random.default_rng([opts["seed"], _solver_rank()])
        self.train = self.phase == caffe.TRAIN
        self.masks = None

    def reshape(self, bottom, top):
        # pycaffe's blob vectors index but do not iterate
        shape = bottom[0].data.shape
        for k in range(len(bottom)):
            if bottom[k].data.shape != shape:
                raise ValueError("PairwiseConsistentDropout: bottom %d has shape %s, bottom 0 %s"
                                 % (k, bottom[k].data.shape, shape))
            top[k].reshape(*shape)

    def forward(self, bottom, top):
        if not self.train or self.ratio == 0:
            for k in range(len(bottom)):
                top[k].data[...] = bottom[k].data
            return
        self.masks = draw_masks(self.rng, bottom[0].data.shape, len(bottom), self.ratio,
                                self.consistent)
        for k in range(len(bottom)):
            np.multiply(bottom[k].data, self.masks[k], out=top[k].data)

    def backward(self, top, propagate_down, bottom):
        for k in range(len(bottom)):
            if not propagate_down[k]:
                continue
            if not self.train or self.ratio == 0:
                bottom[k].diff[...] = top[k].diff
            else:
                np.multiply(top[k].diff, self.masks[k], out=bottom[k].diff)
