"""MTDnet CIR pair scoring (evaluation/cir.py): pairs per second of the
batched test (norm2 once per image, conv3…fc8 on concatenated pairs) against
a naive loop of one pair per forward of the whole pair deploy net, same
images, same run, CPU, input 227."""
import time

import numpy as np

from common import caffe_env
from common.config import MTDNET_INPUT
from bench.timing import Result
from evaluation import cir

PROBES, GALLERY = 8, 16


def run():
    caffe_env.set_mode(None)
    trunk, head, pair = cir.load_nets(None, MTDNET_INPUT)  # random fillers: timing only
    rng = np.random.RandomState(0)
    probe = rng.uniform(0, 255, (PROBES, 3, MTDNET_INPUT, MTDNET_INPUT)).astype(np.float32)
    gallery = rng.uniform(0, 255, (GALLERY, 3, MTDNET_INPUT, MTDNET_INPUT)).astype(np.float32)
    pairs = PROBES * GALLERY
    cir.cir_scores(trunk, head, probe[:1], gallery[:2], passes=1)  # warm up
    start = time.perf_counter()
    cir.cir_scores(trunk, head, probe, gallery, passes=1)
    fast = pairs / (time.perf_counter() - start)
    start = time.perf_counter()
    cir.naive_pair_scores(pair, probe, gallery)
    naive = pairs / (time.perf_counter() - start)
    return [Result("CIR pair scoring %dx%d, 1 pass (pairs/s)" % (PROBES, GALLERY), fast, naive,
                   "pairs/s", "one pair per forward")]
