"""Triplet-feeding data layers of MTDnet (Chen et al. 2017, §"The
multi-task network" and §"Cross-domain architecture"),
reading the project's LMDB ("reid-lmdb/1", data_prep/lmdb_builder.py).

Input preprocessing is the authors' code's: each image stretched to
size × size (227 by default; no crop), mirrored at random in TRAIN, raw 0–255
BGR without mean subtraction (an optional "mean" subtracts one).

TripletData — param_str JSON: "source" (lmdb dir, required), "batch"
(triplets per batch, default 128 as in the authors' prototxt), "per_pair"
(triplets per positive pair, 10), "size", "mirror", "mean" (null or 3 BGR
values), "seed". Top "data": 3N × 3 × size × size laid out as triplets
(rows 3i, 3i+1, 3i+2 = A1, A2, B2; see layers/triplet_sampling.py).

CrossDomainData — the same keys plus "aux_source" (the source-domain lmdb,
e.g. CUHK03). Tops "data" (target triplets as above), "src_data" (2N source
images, pairs interleaved: rows 2i, 2i+1) and "src_label" (N pair labels,
1 = same person, alternately positive and negative).

Sizes from param_str are checked in setup, naming the keys: the tops must
fit a Caffe blob (Caffe would abort the process), and the triplet table
(positive pairs × per_pair rows) must stay within MAX_TRIPLETS.
"""
import os

import caffe
import numpy as np

from common.config import MTDNET_INPUT
from common.params import Param, parse_param_str
from data_prep.images import resize_bgr
from layers.blob_size import check_blob
from layers.triplet_sampling import (TRIPLETS_PER_PAIR, positive_pairs, sample_pairs,
                                     sample_triplets, triplet_epochs)

BATCH = 128  # data_param { batch_size: 128 } in the authors' train_val.prototxt
# Triplets held in memory (int64 × 3 each: 1.5 GiB); CUHK03's training set
# gives under a million at the paper's per_pair = 10.
MAX_TRIPLETS = 2 ** 26


def _mean_ok(v):
    return v is None or (len(v) == 3 and all(isinstance(x, (int, float)) for x in v))


PARAMS = {
    "source": Param(str),
    "batch": Param(int, BATCH, lambda v: v >= 1, ">= 1"),
    "per_pair": Param(int, TRIPLETS_PER_PAIR, lambda v: v >= 1, ">= 1"),
    "size": Param(int, MTDNET_INPUT, lambda v: v >= 35, ">= 35 (conv1–pool2 need it)"),
    "mirror": Param(bool, True),
    "mean": Param((list, type(None)), None, _mean_ok, "null or 3 numbers (BGR)"),
    "seed": Param(int, 0),
}
CROSS_PARAMS = dict(PARAMS, aux_source=Param(str))


def prepare(images, size, flip=None, mean=None):
    """uint8 N × 3 × H × W BGR → float32 N × 3 × size × size: stretched (no
    crop), flipped horizontally where `flip` is true, minus `mean` if given."""
    out = np.empty((len(images), 3, size, size), np.float32)
    for k, im in enumerate(images):
        hwc = resize_bgr(np.ascontiguousarray(im.transpose(1, 2, 0)), size, size)
        if flip is not None and flip[k]:
            hwc = hwc[:, ::-1]
        out[k] = hwc.transpose(2, 0, 1)
    if mean is not None:
        out -= np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
    return out


class _LmdbSet:
    """Images and their (pid, cam) from one reid-lmdb/1 directory."""

    def __init__(self, path, where):
        from data_prep.lmdb_builder import LmdbImages, read_index  # the reid-lmdb/1 reader
        index = read_index(path)
        self.pids = np.asarray(index["pid"])
        self.cams = np.asarray(index["cam"])
        if len(self.pids) != index["count"] or len(self.cams) != index["count"]:
            raise ValueError("%s: %s/index.json pid/cam lists do not match count %d"
                             % (where, path, index["count"]))
        self.images = LmdbImages(path)


class TripletData(caffe.Layer):
    PARAMS = PARAMS
    NAME = "TripletData"
    TOPS = ("data",)

    def setup(self, bottom, top):
        if bottom or len(top) != len(self.TOPS):
            raise ValueError("%s: expects no bottom and %d top(s) (%s)"
                             % (self.NAME, len(self.TOPS), ", ".join(self.TOPS)))
        self.opts = parse_param_str(self.param_str, self.PARAMS, self.NAME)
        o = self.opts
        # "data" (3N images) is the largest top of both layers
        check_blob(self.NAME, "data", (3 * o["batch"], 3, o["size"], o["size"]),
                   {"batch": o["batch"], "size": o["size"]})
        self.train = self.phase == caffe.TRAIN
        self.target = _LmdbSet(self.opts["source"], self.NAME)
        pairs = len(positive_pairs(self.target.pids, self.target.cams))
        if pairs * o["per_pair"] > MAX_TRIPLETS:
            raise ValueError("%s: param_str 'per_pair' = %d gives %d triplets for the %d positive "
                             "pairs of %s, more than %d"
                             % (self.NAME, o["per_pair"], pairs * o["per_pair"], pairs, o["source"],
                                MAX_TRIPLETS))
        self.triplets = sample_triplets(self.target.pids, self.target.cams,
                                        self.opts["per_pair"], self.opts["seed"])
        self.resume_at(0)

    def resume_at(self, iteration):
        """Continue the seeded batch sequence at `iteration` (tools.train)."""
        self.iteration = iteration
        self.stream = triplet_epochs(self.triplets, self.opts["batch"], self.opts["seed"], iteration)

    def _images(self, lmdb_set, indices, rng):
        flip = rng.rand(len(indices)) < 0.5 if (self.train and self.opts["mirror"]) else None
        return prepare(lmdb_set.images.get_many(indices), self.opts["size"], flip, self.opts["mean"])

    def reshape(self, bottom, top):
        s, n = self.opts["size"], self.opts["batch"]
        top[0].reshape(3 * n, 3, s, s)

    def forward(self, bottom, top):
        rng = np.random.RandomState((self.opts["seed"], self.iteration))
        top[0].data[...] = self._images(self.target, next(self.stream).reshape(-1), rng)
        self.iteration += 1

    def backward(self, top, propagate_down, bottom):
        pass


class CrossDomainData(TripletData):
    PARAMS = CROSS_PARAMS
    NAME = "CrossDomainData"
    TOPS = ("data", "src_data", "src_label")

    def setup(self, bottom, top):
        TripletData.setup(self, bottom, top)
        same = os.path.realpath(self.opts["aux_source"]) == os.path.realpath(self.opts["source"])
        # LMDB refuses to open one environment twice in a process
        self.aux = self.target if same else _LmdbSet(self.opts["aux_source"], self.NAME)
        self.aux_pos = positive_pairs(self.aux.pids, self.aux.cams)

    def reshape(self, bottom, top):
        s, n = self.opts["size"], self.opts["batch"]
        top[0].reshape(3 * n, 3, s, s)
        top[1].reshape(2 * n, 3, s, s)
        top[2].reshape(n)

    def forward(self, bottom, top):
        rng = np.random.RandomState((self.opts["seed"], self.iteration, 1))  # apart from the target's
        pairs = sample_pairs(self.aux.pids, self.aux.cams, self.opts["batch"],
                             rng.randint(2 ** 31), self.aux_pos)
        top[1].data[...] = self._images(self.aux, pairs[:, :2].reshape(-1), rng)
        top[2].data[...] = pairs[:, 2]
        TripletData.forward(self, bottom, top)
