"""Identity-sampled minibatches of Geng16 §5.2 ("In each iteration, we
randomly select K person; for each person we then randomly select M images.
These K∗M distinct images are loaded to form one minibatch"; K = 32, M = 2),
read from the project's LMDB (reid-lmdb/1, data_prep/lmdb_builder.py), with
GoogLeNet's input: a random crop and mirror in TRAIN, the centre crop in
TEST, minus BVLC's ImageNet mean (common/config.py MEAN_BGR).

Sampling (plain numpy functions below, testable without Caffe):
- identities are drawn epoch by epoch: each epoch is a fresh permutation of
  this rank's identities, cut into batches of K, so every identity is
  visited once before any repeats; a batch that straddles two epochs takes
  the new epoch's first identities that are not already in it (the others
  move up to the next batch), so a batch always holds K distinct people;
- each identity's M images are drawn at random without replacement, with
  replacement only when it has fewer than M;
- with several solvers (multi-GPU, one process per GPU), rank r of n draws
  only from identities[r::n] of the sorted training labels: disjoint shards
  that cover every identity.

Batch t is a function of (seed, rank, t) alone, so `resume_at(iteration)`
(training/stage.py) continues the exact sequence of an interrupted run.

A background thread prepares batches (LMDB reads, crops and mirrors on
uint8) into a queue "prefetch" deep; forward only turns the next batch into
float32 minus the mean, in one vectorised pass straight into the top blob.
pycaffe keeps Python's GIL while the C++ net runs, so the thread works while
forward waits and between solver calls, not in parallel with the C++
layers; bench/bench_data_layer.py measures the delivered rate.

param_str JSON: "source" (required), "k" (32), "m" (2), "crop" (one size
or [height, width]; common.config.GENG16_CROP), "mirror" (true), "mean" (common.config.MEAN_BGR),
"seed" (0), "prefetch" (4), "rank"/"count" (caffe.solver_rank()/
solver_count()). "m" may exceed what an identity has (its images are then
drawn with replacement), but k·m crops must fit one Caffe blob (refused in
setup, naming the keys, rather than aborted by Caffe). Tops: "data" (K·M × 3 × crop height × crop width float32; rows
i·M … i·M+M−1 are identity i) and "label" (K·M float32 training labels).
"""
import queue
import threading
import weakref

import caffe
import numpy as np

from common.config import GENG16_CROP, MEAN_BGR
from common.params import Param, parse_param_str
from layers.blob_size import check_blob

K = 32   # identities per minibatch (Geng16 §5.2)
M = 2    # images per identity (Geng16 §5.2)
PREFETCH = 4  # batches queued ahead, as Caffe's data_param.prefetch default
NAME = "IdentitySampledData"


def _crop_ok(v):
    if isinstance(v, int):
        return v >= 1
    return len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v)


def _mean_ok(v):
    return len(v) == 3 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)


PARAMS = {
    "source": Param(str),
    "k": Param(int, K, lambda v: v >= 1, ">= 1"),
    "m": Param(int, M, lambda v: v >= 1, ">= 1"),
    "crop": Param((int, list), GENG16_CROP, _crop_ok, "a size >= 1 or [height, width]"),
    "mirror": Param(bool, True),
    "mean": Param(list, list(MEAN_BGR), _mean_ok, "3 numbers (BGR)"),
    "seed": Param(int, 0, lambda v: v >= 0, ">= 0"),
    "prefetch": Param(int, PREFETCH, lambda v: v >= 1, ">= 1"),
    "rank": Param((int, type(None)), None),
    "count": Param((int, type(None)), None),
}


# --- sampling -------------------------------------------------------------

def shard_identities(labels, rank, count):
    """This rank's identities: every count-th of the sorted distinct labels
    (≥ 0; -1 means "no label"), starting at `rank`."""
    if count < 1 or not 0 <= rank < count:
        raise ValueError("%s: rank %d is not in [0, count=%d)" % (NAME, rank, count))
    ids = np.unique(np.asarray(labels))
    return ids[ids >= 0][rank::count]


def group_by_label(labels, identities):
    """{label: sorted image indices} for the given identities."""
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, identities, side="left")
    ends = np.searchsorted(sorted_labels, identities, side="right")
    return {int(i): order[s:e] for i, s, e in zip(identities, starts, ends)}


def identity_batches(identities, k, seed, start=0):
    """Endless batches of k distinct identities, epoch by epoch (see the
    module docstring), beginning at batch `start`."""
    identities = np.asarray(identities)
    n = len(identities)
    if n < k:
        raise ValueError("%s: k=%d identities per batch but this shard has only %d" % (NAME, k, n))
    pending = np.empty(0, identities.dtype)   # the stream not yet batched
    epoch, batch = 0, 0
    while True:
        while len(pending) < k:
            perm = identities[np.random.RandomState(list(np.atleast_1d(seed)) + [epoch]).permutation(n)]
            epoch += 1
            if len(pending):
                # the epoch's head completes the batch begun by the previous
                # epoch's tail: its first people not already in that batch
                free = np.flatnonzero(~np.isin(perm, pending))[:k - len(pending)]
                perm = np.concatenate([perm[free], np.delete(perm, free)])
            pending = np.concatenate([pending, perm])
        if batch < start:  # fast-forward whole batches (resume_at late in a run)
            skip = min(len(pending) // k, start - batch)
            pending, batch = pending[skip * k:], batch + skip
            continue
        yield pending[:k].copy()
        pending = pending[k:]
        batch += 1


def choose_images(groups, ids, m, rng):
    """k·m image indices: m per identity, consecutive, without replacement
    unless an identity has fewer than m images."""
    out = np.empty(len(ids) * m, np.int64)
    for j, i in enumerate(ids):
        pool = groups[int(i)]
        out[j * m:(j + 1) * m] = rng.choice(pool, m, replace=len(pool) < m)
    return out


def crop_size(crop):
    """(height, width) of a crop given as one size (square) or [h, w]."""
    return (crop, crop) if isinstance(crop, int) else tuple(crop)


def crop_params(n, height, width, crop, rng, train, mirror):
    """(row offsets, column offsets, flip flags) of n crops: random in
    TRAIN, centred in TEST (as Caffe's DataTransformer)."""
    ch, cw = crop_size(crop)
    if train:
        oy = rng.randint(0, height - ch + 1, n)
        ox = rng.randint(0, width - cw + 1, n)
    else:
        oy = np.full(n, (height - ch) // 2)
        ox = np.full(n, (width - cw) // 2)
    flip = rng.rand(n) < 0.5 if (train and mirror) else np.zeros(n, bool)
    return oy, ox, flip


def crop_mirror(images, oy, ox, flip, crop, out=None):
    """uint8 N×C×H×W → uint8 N×C×ch×cw, each cropped at (oy, ox) and
    flipped left-right where `flip`."""
    n, c = images.shape[:2]
    ch, cw = crop_size(crop)
    if out is None:
        out = np.empty((n, c, ch, cw), np.uint8)
    for i in range(n):
        patch = images[i, :, oy[i]:oy[i] + ch, ox[i]:ox[i] + cw]
        out[i] = patch[:, :, ::-1] if flip[i] else patch
    return out


def subtract_mean(images_u8, mean, out=None):
    """float32 images − per-channel mean, in one pass (into `out` if given)."""
    mean = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
    return np.subtract(images_u8, mean, out=out, dtype=np.float32)


# --- the layer ------------------------------------------------------------

class Sampler:
    """Batch t of one rank, deterministic in (seed, rank, t): image indices,
    labels and uint8 crops, read through an LmdbImages."""

    def __init__(self, images, labels, opts, rank, count, train):
        self.images = images
        self.labels = np.asarray(labels)
        self.opts = opts
        self.rank = rank
        self.train = train
        self.identities = shard_identities(self.labels, rank, count)
        if len(self.identities) < opts["k"]:
            raise ValueError("%s: %s holds %d labelled identities for rank %d of %d, fewer than k=%d"
                             % (NAME, opts["source"], len(self.identities), rank, count, opts["k"]))
        self.groups = group_by_label(self.labels, self.identities)
        _, self.height, self.width = images.shape
        ch, cw = crop_size(opts["crop"])
        if ch > self.height or cw > self.width:
            size = "%d" % ch if ch == cw else "%dx%d" % (ch, cw)
            raise ValueError("%s: crop %s is larger than the LMDB's %dx%d images (%s)"
                             % (NAME, size, self.height, self.width, opts["source"]))

    def batches(self, start):
        """(indices, labels float32, uint8 crops) for batches start, start+1, …"""
        o = self.opts
        seed = [o["seed"], self.rank]
        for t, ids in enumerate(identity_batches(self.identities, o["k"], seed, start), start):
            rng = np.random.RandomState([o["seed"], self.rank, t, 1])  # apart from the epoch streams
            idx = choose_images(self.groups, ids, o["m"], rng)
            raw = self.images.get_many(idx)
            oy, ox, flip = crop_params(len(idx), self.height, self.width, o["crop"], rng,
                                       self.train, o["mirror"])
            yield idx, self.labels[idx].astype(np.float32), crop_mirror(raw, oy, ox, flip, o["crop"])


class Prefetcher:
    """A daemon thread that fills a bounded queue from an iterator; an
    exception in the thread is handed to the consumer."""

    def __init__(self, iterator, depth):
        self.queue = queue.Queue(maxsize=depth)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(iterator,), name=NAME + "-prefetch",
                                       daemon=True)
        self.thread.start()

    def _run(self, iterator):
        try:
            for item in iterator:
                while not self.stop_event.is_set():
                    try:
                        self.queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self.stop_event.is_set():
                    return
        except BaseException as err:  # surfaced in get(), in the net's thread
            self.queue.put(err)

    def get(self):
        item = self.queue.get()
        if isinstance(item, BaseException):
            raise RuntimeError("%s: prefetch thread failed: %s" % (NAME, item)) from item
        return item

    def stop(self):
        self.stop_event.set()
        self.thread.join()


class IdentitySampledData(caffe.Layer):
    """K identities × M images per batch from a reid-lmdb/1 directory."""

    def setup(self, bottom, top):
        from data_prep.lmdb_builder import LmdbImages, read_index
        if bottom or len(top) != 2:
            raise ValueError("%s: expects no bottom and 2 tops (data, label), got %d and %d"
                             % (NAME, len(bottom), len(top)))
        self.opts = parse_param_str(self.param_str, PARAMS, NAME)
        o = self.opts
        check_blob(NAME, "data", (o["k"] * o["m"], 3) + crop_size(o["crop"]),
                   {"k": o["k"], "m": o["m"], "crop": o["crop"]})
        rank = caffe.solver_rank() if self.opts["rank"] is None else self.opts["rank"]
        count = caffe.solver_count() if self.opts["count"] is None else self.opts["count"]
        index = read_index(self.opts["source"])
        self.images = LmdbImages(self.opts["source"])
        self.sampler = Sampler(self.images, index["label"], self.opts, rank, count,
                               self.phase == caffe.TRAIN)
        self.prefetcher = None
        self.last_indices = None
        self.resume_at(0)

    def resume_at(self, iteration):
        """Continue the seeded batch sequence at `iteration` (training/stage.py)."""
        self.close()
        self.prefetcher = Prefetcher(self.sampler.batches(iteration), self.opts["prefetch"])
        # stop the thread when the layer goes (Caffe gives layers no teardown)
        self._finalizer = weakref.finalize(self, self.prefetcher.stop)

    def close(self):
        """Stop the prefetch thread."""
        if self.prefetcher is not None:
            self._finalizer()
            self.prefetcher = None

    def reshape(self, bottom, top):
        n = self.opts["k"] * self.opts["m"]
        top[0].reshape(n, 3, *crop_size(self.opts["crop"]))
        top[1].reshape(n)

    def forward(self, bottom, top):
        self.last_indices, labels, crops = self.prefetcher.get()
        subtract_mean(crops, self.opts["mean"], out=top[0].data)
        top[1].data[...] = labels

    def backward(self, top, propagate_down, bottom):
        pass
